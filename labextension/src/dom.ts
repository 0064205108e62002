/** Small DOM helpers shared by the panel's rows. */

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export function button(
  label: string,
  className: string,
  onClick: () => void,
  type: 'button' | 'submit' = 'button'
): HTMLButtonElement {
  const node = el('button', `jp-Button jp-mod-styled jp-mod-small ${className}`, label);
  node.type = type;
  if (type === 'button') {
    node.addEventListener('click', onClick);
  }
  return node;
}

/** Assign text only when it differs: avoids needless layout and keeps selections. */
export function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}

export function firstWords(text: string, max = 60): string {
  const line = text.split('\n', 1)[0];
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** Place a row of the flat tree list: indent by `depth`, say where it sits. */
export function placeRow(node: HTMLElement, depth: number, parent: string | null): void {
  node.setAttribute('role', 'treeitem');
  node.setAttribute('aria-level', String(depth + 1));
  node.style.setProperty('--jp-hermes-depth', String(depth));
  node.dataset.depth = String(depth);
  if (parent === null) {
    delete node.dataset.parent;
  } else {
    node.dataset.parent = parent;
  }
}

/**
 * Status-bar item "N running · M queued" for the active notebook's kernel.
 *
 * Shown only while that kernel has a live Hermes link; a click opens the panel.
 */

import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { HermesController } from './controller';
import { counts, statusText } from './model';

export class HermesStatus extends Widget {
  constructor(
    private readonly _controller: HermesController,
    onClick: () => void
  ) {
    super();
    this.addClass('jp-HermesStatus');
    this.node.title = 'Hermes background tasks: click to show them';
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;
    this.node.addEventListener('click', onClick);
    this.node.addEventListener('keydown', ev => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        onClick();
      }
    });
    _controller.activeChanged.connect(this._render, this);
    this._render();
  }

  /** Whether the item should be visible (the status bar asks on `activeStateChanged`). */
  get isActive(): boolean {
    return this._controller.activeState.connection === 'connected';
  }

  get activeStateChanged(): ISignal<this, void> {
    return this._activeStateChanged;
  }

  private _render(): void {
    const c = counts(this._controller.activeState);
    const text = `Hermes: ${statusText(c)}`;
    if (this.node.textContent !== text) {
      this.node.textContent = text;
    }
    this.node.dataset.running = String(c.running);
    this.node.dataset.awaiting = String(c.awaiting);
    if (this.isActive !== this._wasActive) {
      this._wasActive = this.isActive;
      this._activeStateChanged.emit();
    }
  }

  private _wasActive = false;
  private _activeStateChanged = new Signal<this, void>(this);
}

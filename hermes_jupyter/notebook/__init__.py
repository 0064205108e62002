"""The notebook faces: settings (traitlets), the kernel's session, magics, HTML views, binding
results into variables, the JupyterLab comm target and the dashboard widgets. Imports IPython;
imported only by `%load_ext hermes_jupyter`, `hj.get_session()` and `hj.dashboard()`."""

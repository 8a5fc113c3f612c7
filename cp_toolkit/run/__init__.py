"""The frame around the stages: the run folder and its artifacts (:mod:`.artifacts`), the stage
registry and on-demand building of upstream artifacts (:mod:`.pipeline`), and the papermill
runner that writes ``reports/<run>/`` (:mod:`.report`).

Nothing is imported here, so that ``cp_toolkit.run.pipeline`` loads without papermill.
"""

"""The frame around the stages: the run folder and its artifacts (:mod:`.artifacts`), the stage
registry and on-demand building of upstream artifacts (:mod:`.pipeline`), the papermill
runner that writes ``reports/<run>/`` (:mod:`.report`), what a run may delete or refuse
(:mod:`.safety`) and its console lines (:mod:`.console`).

Nothing is imported here, so that ``cp_toolkit.run.pipeline`` loads without papermill.
"""

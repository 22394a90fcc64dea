"""ML layer (SageMaker): the arrival-delay model and its batch predictions.

`train.py` is the script shipped to SageMaker; it imports no Dagster and is never imported at load time,
so loading the code location does not import scikit-learn (README, principle 6).
"""

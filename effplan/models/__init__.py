"""What is measured: candidates (:mod:`~effplan.models.candidates`), the data they eat
(:mod:`~effplan.models.data`), generative models, the built-in example families and the slimming
recipes. torch is imported when a model is built, never at import.
"""

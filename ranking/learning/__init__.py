"""Learning to rank: the rank log, training sets with position-bias correction, the models
(linear and LambdaMART), their registry, activation and loading. See docs/learning.md.

Nothing here runs on the rank request's path except `rank_log.record` (an in-memory append) and
the scorers that `loader` hands to the engine.
"""

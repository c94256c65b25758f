"""Live continual learning on a byte stream (``bytelm live``): context memory with repetition-
and step-based importance, per-chunk gradient scaling, replay, atomic checkpoints, and
forgetting measurements."""
from bytelm.live.forgetting import as_bytes_array, bpb_on, evaluate_domains, forgetting_report
from bytelm.live.learner import LiveConfig, LiveLearner, make_config, read_live_state
from bytelm.live.memory import ContextMemory, context_hash, grad_scale, minhash_key
from bytelm.live.replay import ReplayBuffer
from bytelm.live.stream import iter_chunks, open_stream

__all__ = [
    "ContextMemory",
    "LiveConfig",
    "LiveLearner",
    "ReplayBuffer",
    "as_bytes_array",
    "bpb_on",
    "context_hash",
    "evaluate_domains",
    "forgetting_report",
    "grad_scale",
    "iter_chunks",
    "make_config",
    "minhash_key",
    "open_stream",
    "read_live_state",
]

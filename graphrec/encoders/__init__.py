"""Transformer user encoders over behaviour sequences, whose user embeddings become node features.

:mod:`graphrec.encoders.sequences` turns a graph store (or an S3-Rec sequence file) into
per-user behaviour sequences with time, categorical and text fields, their splits and
padded model batches.
"""

from graphrec.encoders.sequences import (
    TIME_FIELDS,
    TIME_VOCAB,
    BehaviourSequences,
    SequenceSplit,
    from_s3rec,
    from_store,
    load_behaviour_sequences,
    pad_batch,
)

__all__ = [
    "TIME_FIELDS",
    "TIME_VOCAB",
    "BehaviourSequences",
    "SequenceSplit",
    "from_s3rec",
    "from_store",
    "load_behaviour_sequences",
    "pad_batch",
]

# The transformer and its objectives (graphrec.encoders.model, .objectives, .tokenizer).
from graphrec.encoders.model import BehaviourTransformer, num_parameters, train_flops  # noqa: E402
from graphrec.encoders.objectives import (  # noqa: E402
    ENCODER_PARAMS,
    OBJECTIVES,
    PARAM_HELP,
    EncoderObjective,
    build_encoder,
    info_nce,
)
from graphrec.encoders.tokenizer import BPETokenizer  # noqa: E402

__all__ += [
    "BehaviourTransformer",
    "BPETokenizer",
    "ENCODER_PARAMS",
    "EncoderObjective",
    "OBJECTIVES",
    "PARAM_HELP",
    "build_encoder",
    "info_nce",
    "num_parameters",
    "train_flops",
]

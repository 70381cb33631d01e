"""Student models, for every stage that touches one: loading a spec (`loading`, `seq2seq`, `specs`), the
checkpoints of a train run (`checkpoints`, the one module that knows `best/` and `last/`), batched
generation (`generate`) and the student's self-evaluation of its own CoT (`selfeval`).

Training, evaluation and the loops all go through these modules; none of them reaches into another
stage for a student. Importing this package pulls in nothing heavy: torch and transformers load inside
the functions that need them."""

"""Mind's Mirror Studio core library: store, import, teachers, training, evaluation, loops."""

__version__ = "0.1.0"

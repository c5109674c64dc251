"""peaktrade: an ops toolkit for shadow, paper and testnet crypto trading sessions."""

__version__ = "0.1.0"

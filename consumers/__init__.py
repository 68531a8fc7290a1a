"""Thin I/O services on one consumer loop: poll, decode, process a micro-batch, flush, commit."""

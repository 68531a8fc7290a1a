"""The replay producer: CSV (local or S3) -> validation -> tokenisation -> Kafka.

source     reads the CSV in blocks of text columns        validate   checks rows against schemas/
cards      card tokens and masks                          encode     event and label JSON from the models
blocks     read/validate/encode ahead, in a thread        pacing     event-time or fixed-rate pacing
labels     delayed label release                          rejects    quarantine file + dead letters
checkpoint resume point of a replay                       progress   replay counters, progress line
replay     the orchestration                              history    valid rows as a training frame
generator  the synthetic data generator (a package)
"""

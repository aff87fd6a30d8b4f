//! Open-loop load generator with HDR latency histograms.

"""Speed benchmarks: one timing helper, one random-window builder, one module per benchmark.

They print numbers (samples/s, seconds per stage); nothing here asserts a speed."""

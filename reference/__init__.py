"""PyTorch twins of minigan, used to check that minigan computes exactly what PyTorch computes."""

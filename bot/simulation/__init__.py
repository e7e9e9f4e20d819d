"""Simulated Flux controllers and Helm, shared by the live demo and the tests' fakes."""

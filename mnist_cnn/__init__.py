"""mnist_cnn: the course's reference solution. Data, model, training, evaluation, command line."""
__version__ = "0.1.0"

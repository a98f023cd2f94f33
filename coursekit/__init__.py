"""coursekit: the support code that ships with the lessons.

Everything here is safe to give a student: data reading, plotting helpers and the
public checks. It never imports ``mnist_cnn`` (the reference solution) and holds no
solution code of any lesson.
"""

"""A model for ``clipper deploy examples/cli/sum_model.py:predict --name sum --input-type doubles``.

The function (and anything else this file defines that it uses) is serialised by value, so the
model container needs nothing of this file; modules it imports must be installed there
(``--pkgs``).
"""


def predict(inputs):
    """One output string per input: the sum of its numbers."""
    return [str(sum(x)) for x in inputs]


def predict_double(inputs):
    """A second version of the model: twice the sum."""
    return [str(2 * sum(x)) for x in inputs]

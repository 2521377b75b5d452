import numpy as np

from skinscan_training.distill import mixed_targets


def test_targets_mix_one_hot_labels_with_the_teachers_probabilities() -> None:
    labels = np.array([0, 4])
    teacher = np.full((2, 7), 1 / 7, dtype=np.float32)
    mixed = mixed_targets(labels, teacher, 0.25)
    np.testing.assert_allclose(mixed.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(mixed[0, 0], 0.75 + 0.25 / 7, rtol=1e-6)
    np.testing.assert_allclose(mixed[1, 0], 0.25 / 7, rtol=1e-6)
    assert mixed[1].argmax() == 4
    # The two ends: labels alone, or the teacher alone.
    np.testing.assert_array_equal(mixed_targets(labels, teacher, 0.0).argmax(1), labels)
    np.testing.assert_allclose(mixed_targets(labels, teacher, 1.0), teacher)

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


def test_a_checkpoint_from_before_teacher_ensembles_still_loads() -> None:
    from dataclasses import asdict

    from skinscan_training.config import TrainConfig

    current = asdict(TrainConfig(data="d", out="o"))
    old = {k: v for k, v in current.items() if k not in ("teachers", "binary_weight")}
    assert TrainConfig.from_saved({**old, "teacher": "models"}).teachers == ["models"]
    assert TrainConfig.from_saved({**old, "teacher": ""}).teachers == []
    assert TrainConfig.from_saved(current) == TrainConfig(data="d", out="o")

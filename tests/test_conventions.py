from itertools import product

import numpy as np
import pytest

from brats_seg.conventions import (
    LABEL_SCHEMES,
    MODALITIES,
    AmbiguousSchemeError,
    canonical_modality,
    convert_labels,
    detect_dataset_schemes,
    detect_scheme,
    get_scheme,
    labels_to_regions,
    naming_of,
    regions_to_labels,
)
from brats_seg.errors import BratsSegError


@pytest.mark.parametrize("alias,canon", [("t1", "t1n"), ("T1ce", "t1c"), ("t1Gd", "t1c"), ("t2", "t2w"),
                                         ("FLAIR", "t2f"), ("T1w", "t1n"), ("T2w", "t2w"), ("t2f", "t2f")])
def test_modality_aliases(alias, canon):
    assert canonical_modality(alias) == canon


def test_unknown_modality_lists_valid():
    with pytest.raises(BratsSegError, match="accepted"):
        canonical_modality("pd")


def _all_regions_volume():
    """Every consistent region combination once: bg, WT only, WT+TC, WT+TC+ET."""
    return np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]], bool).T.reshape(3, 4, 1, 1)


NESTED = [s.name for s in LABEL_SCHEMES.values() if s.nested]


@pytest.mark.parametrize("src,dst", list(product(NESTED, NESTED)))
def test_round_trip_between_schemes(src, dst):
    regions = _all_regions_volume()
    labels = regions_to_labels(regions, src)
    converted = convert_labels(labels, src, dst)
    assert set(np.unique(converted)) <= get_scheme(dst).values
    np.testing.assert_array_equal(labels_to_regions(converted, dst), regions)
    np.testing.assert_array_equal(convert_labels(converted, dst, src), labels)


def test_known_label_values():
    assert regions_to_labels(_all_regions_volume(), "brats2021").ravel().tolist() == [0, 2, 1, 4]
    assert regions_to_labels(_all_regions_volume(), "brats2023").ravel().tolist() == [0, 2, 1, 3]
    assert regions_to_labels(_all_regions_volume(), "msd").ravel().tolist() == [0, 1, 2, 3]
    assert regions_to_labels(_all_regions_volume(), "brats2024-gli").ravel().tolist() == [0, 2, 1, 3]
    assert regions_to_labels(_all_regions_volume(), "brats2024-ped").ravel().tolist() == [0, 4, 2, 1]
    assert get_scheme("brats2021").et_label == 4 and get_scheme("brats2023").et_label == 3
    assert get_scheme("brats2024-ped").et_label == 1


def test_2024_schemes_follow_the_official_configs():
    """Groups and scored groups of brats-evaluation 0.0.10's configs gli, mets, ped and MenRT."""
    import yaml
    from brats_evaluation import config_path

    def groups(config):
        text = config_path(config).read_text()
        text = "\n".join(line.split(" !")[0] if ": !" in line else line for line in text.splitlines())
        found = {}
        for line in text.splitlines():
            if line.startswith("    ") and not line.startswith("     ") and line.strip().endswith(":"):
                name = line.strip()[:-1].upper()
            elif "value_labels" in line:
                found[name] = set(yaml.safe_load(line.split(":", 1)[1]))
        return found

    for config, scheme in (("gli", "brats2024-gli"), ("mets", "brats2024-met"), ("ped", "brats2024-ped"),
                           ("MenRT", "brats2024-men-rt")):
        s, official = get_scheme(scheme), groups(config)
        assert set(s.scored) == set(official), config
        assert all(s.groups[g] == official[g] for g in official), config


def test_cavity_and_cyst_in_the_regions():
    """A resection cavity is no tumor (training reads it as background); a cyst is tumor core, not ET."""
    gli = np.array([0, 1, 2, 3, 4]).reshape(5, 1, 1)
    assert labels_to_regions(gli, "brats2024-gli")[:, 4].ravel().tolist() == [False, False, False]
    assert labels_to_regions(gli, "brats2024-ped")[:, 3].ravel().tolist() == [True, True, False]


def test_brats2015_core_merges_to_one_label():
    lab = np.array([0, 1, 2, 3, 4]).reshape(5, 1, 1)
    assert convert_labels(lab, "brats2015", "brats2021").ravel().tolist() == [0, 1, 2, 1, 4]


def test_conversions_refuse_to_lose_meaning():
    gli = np.array([0, 1, 2, 3, 4]).reshape(5, 1, 1)
    with pytest.raises(BratsSegError, match=r"label 4 \(resection cavity \(RC\)\) has no counterpart"):
        convert_labels(gli, "brats2024-gli", "brats2021")
    # without a cavity the map converts exactly
    assert convert_labels(gli[:4], "brats2024-gli", "brats2021").ravel().tolist() == [0, 1, 2, 4]
    ped = np.array([0, 1, 2, 3, 4]).reshape(5, 1, 1)
    with pytest.raises(BratsSegError, match="label 3 .cystic component"):
        convert_labels(ped, "brats2024-ped", "brats2023")  # brats2023's 1 is NETC, not a cyst
    assert convert_labels(ped[[0, 1, 2, 4]], "brats2024-ped", "brats2023").ravel().tolist() == [0, 3, 1, 2]
    with pytest.raises(BratsSegError, match="no counterpart"):
        convert_labels(np.ones((2, 1, 1), np.uint8), "brats2024-men-rt", "brats2021")
    with pytest.raises(BratsSegError, match="no nested WT/TC/ET regions"):
        labels_to_regions(np.ones((2, 1, 1), np.uint8), "brats2024-men-rt")
    with pytest.raises(BratsSegError, match="outside scheme brats2021"):
        convert_labels(np.array([0, 3]), "brats2021", "brats2023")


def test_regions_to_labels_enforces_nesting():
    # ET without TC/WT must not produce an ET voxel outside WT
    regions = np.zeros((3, 2, 1, 1), bool)
    regions[2, 0] = True          # ET alone
    regions[1, 1] = regions[2, 1] = True  # TC+ET without WT
    out = regions_to_labels(regions, "brats2021")
    assert out.ravel().tolist() == [0, 0]
    back = labels_to_regions(out, "brats2021")
    assert (back[2] <= back[1]).all() and (back[1] <= back[0]).all()


def test_detect_scheme_without_hint_never_guesses():
    with pytest.raises(AmbiguousSchemeError, match="--label-scheme"):
        detect_scheme([0, 1, 2, 4])  # brats2021's ET, or a 2024+ RC (GLI, MET) or ED (PED)
    with pytest.raises(AmbiguousSchemeError, match="brats2015, brats2024-gli, brats2024-met, brats2024-ped"):
        detect_scheme([0, 1, 2, 3, 4])
    with pytest.raises(AmbiguousSchemeError):
        detect_scheme([0, 1, 2, 3])
    with pytest.raises(BratsSegError, match="fit no known scheme"):
        detect_scheme([0, 7])


@pytest.mark.parametrize("values,hint,case_id,want", [
    ([0, 1, 2, 4], "brats2021", "BraTS2021_00002", "brats2021"),
    ([0, 1, 2, 4], None, "Brats18_CBICA_AQN_1", "brats2021"),  # the 2017-2021 naming
    ([0, 1, 2, 3, 4], None, "Brats18_CBICA_AQN_1", "brats2015"),
    ([0, 1, 2, 3], "brats2023", None, "brats2023"),  # the hint wins: its extensions read 1-3 the same
    ([0, 1, 2, 3], "brats2023", "BraTS-GLI-00000-000", "brats2023"),
    ([0, 1, 2, 3, 4], "brats2023", "BraTS-GLI-02073-100", "brats2024-gli"),  # 4 = resection cavity
    ([0, 1, 2, 4], "brats2023", "BraTS-GLI-02073-100", "brats2024-gli"),
    ([0, 1, 2, 3, 4], "brats2023", "BraTS-MET-00001-000", "brats2024-met"),
    ([0, 1, 2, 3, 4], "brats2023", "BraTS-PED-00001-000", "brats2024-ped"),
    ([0, 4], "brats2023", "BraTS-PED-00001-000", "brats2024-ped"),
    ([0, 1], "brats2023", "BraTS-MEN-RT-0001-1", "brats2024-men-rt"),
    ([0, 1, 2, 3], "brats2023", "BraTS-SSA-00001-000", "brats2023"),
    ([0, 1, 2, 3], "brats2024-ped", "BraTS-PED-00001-000", "brats2024-ped"),  # an explicit hint decides
    ([0, 1, 2, 3], "msd", "case1", "msd"),
])
def test_detect_scheme_with_layout_hint_and_case_id(values, hint, case_id, want):
    assert detect_scheme(values, hint, case_id=case_id) == want


@pytest.mark.parametrize("values,hint,case_id,names", [
    ([0, 1, 2, 3], "brats2023", "BraTS-PED-00001-000", "brats2023, brats2024-ped"),  # 1: NETC or ET
    ([0, 1, 2, 3, 4], "brats2023", "case1", "brats2024-gli, brats2024-met"),  # they score different groups
])
def test_ambiguous_under_a_layout_that_does_not_say(values, hint, case_id, names):
    with pytest.raises(AmbiguousSchemeError, match=f"ambiguous between schemes {names} .*--label-scheme"):
        detect_scheme(values, hint, case_id=case_id)


def test_detect_scheme_hint_mismatch():
    with pytest.raises(BratsSegError, match="do not fit"):
        detect_scheme([0, 4], hint="msd")


def test_dataset_values_together_settle_the_scheme():
    ped = {"a": ([0, 1, 2, 3], "brats2023", "BraTS-PED-00001-000"),
           "b": ([0, 1, 2, 3, 4], "brats2023", "BraTS-PED-00002-000")}
    assert detect_dataset_schemes(ped) == {"a": "brats2024-ped", "b": "brats2024-ped"}
    gli = {"a": ([0, 1, 2, 3], "brats2023", "BraTS-GLI-00001-100"),
           "b": ([0, 1, 2, 3, 4], "brats2023", "BraTS-GLI-00002-100")}
    assert detect_dataset_schemes(gli) == {"a": "brats2024-gli", "b": "brats2024-gli"}
    ambiguous = detect_dataset_schemes({"a": ped["a"], "c": ([0, 2], "brats2023", "BraTS-PED-00003-000")})
    assert all(isinstance(v, AmbiguousSchemeError) for v in ambiguous.values())
    # values that fit no single scheme together (mixed conventions) are decided case by case
    mixed = detect_dataset_schemes({"a": ([0, 1, 2, 4], "brats2021", "x"), "b": ([0, 5], "brats2021", "y")})
    assert mixed["a"] == "brats2021" and isinstance(mixed["b"], BratsSegError)
    assert naming_of("BraTS-MEN-RT-0001-1") == "men-rt" and naming_of("BraTS20_Training_001") == "legacy"
    assert naming_of("patient7") is None


def test_modalities_canonical_order():
    assert MODALITIES == ("t1n", "t1c", "t2w", "t2f")

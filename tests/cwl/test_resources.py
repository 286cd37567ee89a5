"""fit_resources: a step's cores and RAM against the cluster's largest node."""

from __future__ import annotations

import pytest

from cwl_crunch.cwl.resources import MIB, ResourcesUnavailable, fit_resources
from cwl_crunch.model import NodeSize

NODE = NodeSize(cores=2.0, ram=4096 * MIB)


def request(cores_min=1, ram_min=256, **more):
    return {"coresMin": cores_min, "coresMax": cores_min, "ramMin": ram_min,
            "ramMax": ram_min, "tmpdirMin": 1024, "tmpdirMax": 1024, "outdirMin": 1024,
            "outdirMax": 1024, **more}


@pytest.mark.parametrize("required", [False, True])
def test_what_fits_is_given_as_asked_without_warning(required):
    fitted = fit_resources(request(2, 4096.0), NODE, required=required, step="wf/a")
    assert fitted.resources == {"cores": 2, "ram": 4096, "tmpdirSize": 1024,
                                "outdirSize": 1024}
    assert isinstance(fitted.resources["cores"], int)  # $(runtime.cores) prints 2
    assert fitted.warnings == ()


def test_a_fraction_of_a_core_and_of_a_mib_stay_as_cwltool_gives_them():
    fitted = fit_resources(request(0.5, 100.2), NODE, required=True, step="s")
    assert (fitted.resources["cores"], fitted.resources["ram"]) == (0.5, 101)


def test_a_hint_beyond_the_node_is_scaled_down_to_it_with_a_warning():
    fitted = fit_resources(request(4, 10_000), NODE, required=False, step="wf/big")
    assert (fitted.resources["cores"], fitted.resources["ram"]) == (2, 4096)
    assert len(fitted.warnings) == 2
    cores_warning, ram_warning = fitted.warnings
    assert "[step wf/big]" in cores_warning and "4 cores" in cores_warning
    assert "2 cores" in cores_warning and "hint" in cores_warning
    assert "10000 MiB" in ram_warning and "4096 MiB" in ram_warning


def test_a_fractional_node_is_given_as_is():
    fitted = fit_resources(request(4), NodeSize(1.5, NODE.ram), required=False, step="s")
    assert fitted.resources["cores"] == 1.5


@pytest.mark.parametrize(("cores", "ram", "words"), [
    (1000, 256, "requires 1000 cores (coresMin), but the largest node of the cluster "
                "has 2 cores"),
    (1, 5000, "requires 5000 MiB of RAM (ramMin), but the largest node of the cluster "
              "has 4096 MiB"),
])
def test_a_requirement_beyond_the_node_is_refused_naming_the_step_and_limit(cores, ram,
                                                                            words):
    with pytest.raises(ResourcesUnavailable) as raised:
        fit_resources(request(cores, ram), NODE, required=True, step="wf/big")
    assert str(raised.value).startswith("[step wf/big] ")
    assert words in str(raised.value)


def test_cuda_devices_are_passed_on():
    fitted = fit_resources(request(1, cudaDeviceCountMin=1, cudaDeviceCountMax=1), NODE,
                           required=False, step="s")
    assert fitted.resources["cudaDeviceCount"] == 1

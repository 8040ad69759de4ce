import pytest
from hypothesis import given
from hypothesis import strategies as st

from netmanager.inputs import units
from netmanager.inputs.units import UnitError


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("1Mbit", 1_000_000),
        ("100Mbit/s", 100_000_000),
        ("1Gbit", 1_000_000_000),
        ("1.5Gbit", 1_500_000_000),
        ("64kbit", 64_000),
        ("512bit", 512),
        ("10MB/s", 80_000_000),
        (" 2 Mbit ", 2_000_000),
    ],
)
def test_rates(text: str, bps: int) -> None:
    assert units.parse_rate(text) == bps


@pytest.mark.parametrize(
    "text", ["1Mbps", "100mbps", "fast", "0Mbit", "-1Mbit", "1.0000001bit", "100Tbit"]
)
def test_bad_rates(text: str) -> None:
    with pytest.raises(UnitError) as err:
        units.parse_rate(text)
    assert err.value.hint


def test_bps_is_refused_with_the_reason() -> None:
    with pytest.raises(UnitError, match="ambiguous"):
        units.parse_rate("1Mbps")


@pytest.mark.parametrize(
    ("text", "us"),
    [
        ("20ms", 20_000),
        ("150us", 150),
        ("150µs", 150),
        ("1.5s", 1_500_000),
        ("0.5ms", 500),
        ("0ms", 0),
    ],
)
def test_times(text: str, us: int) -> None:
    assert units.parse_time(text) == us


@pytest.mark.parametrize("text", ["20", "20 sec", "0.5us", "2h", "ms"])
def test_bad_times(text: str) -> None:
    with pytest.raises(UnitError):
        units.parse_time(text)


@pytest.mark.parametrize(
    ("text", "ppm"), [("0.5%", 5000), ("100%", 1_000_000), ("0%", 0), ("0.0001%", 1)]
)
def test_percent(text: str, ppm: int) -> None:
    assert units.parse_percent(text) == ppm


@pytest.mark.parametrize("text", ["120%", "0.5", "0.00001%", "-1%"])
def test_bad_percent(text: str) -> None:
    with pytest.raises(UnitError):
        units.parse_percent(text)


@pytest.mark.parametrize(
    ("text", "mib"), [("256MB", 256), ("256MiB", 256), ("2.5GB", 2560), ("1TiB", 1024 * 1024)]
)
def test_memory(text: str, mib: int) -> None:
    assert units.parse_memory(text) == mib


@pytest.mark.parametrize("text", ["lots", "256", "0.5MB", "0GB", "256KB"])
def test_bad_memory(text: str) -> None:
    with pytest.raises(UnitError):
        units.parse_memory(text)


@given(st.integers(min_value=1, max_value=10**12))
def test_rate_round_trip_is_close(bps: int) -> None:
    back = units.parse_rate(units.format_rate(bps).replace("kbit", "kbit"))
    assert abs(back - bps) <= bps * 0.001 + 1


@given(st.integers(min_value=0, max_value=3_600_000_000))
def test_time_round_trip_is_close(us: int) -> None:
    back = units.parse_time(units.format_time(us))
    assert abs(back - us) <= us * 0.001 + 1

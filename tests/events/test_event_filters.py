"""Countries and sectors named in a typed events request, in the four languages."""

from __future__ import annotations

import pytest

from actions.handlers.event_filters import SEVERAL, named_country, named_sector


@pytest.mark.parametrize(
    ("text", "country"),
    [
        ("what events are coming up in Laos?", "la"),
        ("Lao events this month", "la"),
        ("su kien sap toi o lao", "la"),
        ("Sự kiện ở Lào", "la"),
        ("hội chợ ở Viêng Chăn", "la"),
        ("events in Viet Nam", "vn"),
        ("su kien o viet nam", "vn"),
        ("hội thảo tại Hà Nội", "vn"),
        ("sự kiện ở Lào Cai", "vn"),
        ("su kien o Campuchia", "kh"),
        ("events in Phnom Penh", "kh"),
        ("ព្រឹត្តិការណ៍នៅកម្ពុជា", "kh"),
        ("ព្រឹត្តិការណ៍នៅឡាវ", "la"),
        ("ព្រឹត្តិការណ៍នៅវៀតណាម", "vn"),
        ("ມີງານຫຍັງຢູ່ປະເທດລາວ", "la"),
        ("ງານວາງສະແດງໃນວຽງຈັນ", "la"),
        ("ມີງານຫຍັງຢູ່ກໍາປູເຈຍ", "kh"),
        ("ມີງານຫຍັງຢູ່ຫວຽດນາມ", "vn"),
        ("events in Vietnam or Laos", SEVERAL),
    ],
)
def test_country_named(text: str, country: str) -> None:
    assert named_country(text) == country


@pytest.mark.parametrize(
    "text",
    [
        "what events are coming up",
        "sự kiện về an toàn lao động",
        "su kien an toan lao dong",
        "tôi muốn dùng tiếng Lào",
        "ប្តូរទៅភាសាវៀតណាម",
        "ລາວບອກວ່າມີງານ",
    ],
)
def test_no_country_named(text: str) -> None:
    assert named_country(text) is None


@pytest.mark.parametrize(
    ("text", "sector"),
    [
        ("dang ky nhan tin su kien do go", "furniture"),
        ("hội chợ đồ gỗ", "furniture"),
        ("furniture fairs in Vietnam", "furniture"),
        ("ព្រឹត្តិការណ៍គ្រឿងសង្ហារិម", "furniture"),
        ("ງານເຟີນີເຈີ", "furniture"),
        ("su kien det may", "textiles"),
        ("packaging events", "packaging"),
        ("events for food and packaging", SEVERAL),
        ("what events are coming up", None),
    ],
)
def test_sector_named(text: str, sector: str | None) -> None:
    assert named_sector(text) == sector

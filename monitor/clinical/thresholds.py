"""Every clinical threshold and vocabulary, declared once (CLINICAL.md, SPEC.md).

The scales (`crs.py`, `news2.py`, `icans.py`), the bed state, the decoders, the forecast's
features, the simulator and the dashboard (through `/api/meta`) import these names; a
change here is a change everywhere.
"""

from __future__ import annotations

import re
import unicodedata

# -- CRS (ASTCT, Lee 2019) and the project's decisions ---------------------------------
FEVER_C = 38.0  # >= is fever; 37.9 is not
SBP_LOW = 90.0  # decision: adult hypotension is systolic < 90 or mean < 65 mmHg
MAP_LOW = 65.0
SPO2_LOW = 90.0  # decision: SpO2 < 90 % on room air, oxygen not yet recorded, is grade 2
SPO2_LOW_SCALE2 = 88.0  # SpO2 scale 2 (target 88-92 %): below the patient's own target
# A fall of SpO2 is gradual (physiological, not a probe slipping) when no reading moved
# more than this many % points from the one before it (docs/clinical-decisions.md).
SPO2_GRADUAL_STEP = 3.0
ROOM_AIR_FIO2 = 0.21  # a device-reported FiO2 above it, or any O2 flow, is oxygen given
LOW_FLOW_MAX_LPM = 6.0  # nasal cannula <= 6 L/min is low-flow (2), > 6 is high-flow (3)
VASOPRESSIN = "vasopressin"  # not counted toward "several"; alone it is one (decision)

# Oxygen device -> CRS grade (the device beats the flow). None: decided elsewhere
# (room air by SpO2, nasal cannula by flow).
DEVICE_GRADE: dict[str, int | None] = {
    "room_air": None,
    "blow_by": 2,
    "nasal_cannula": None,
    "simple_face_mask": 3,
    "venturi": 3,
    "non_rebreather": 3,
    "hfnc": 3,
    "cpap": 4,
    "bipap": 4,
    "ventilator": 4,
}
O2_DEVICES: tuple[str, ...] = tuple(DEVICE_GRADE)
DEVICE_NAME: dict[str, str] = {
    "room_air": "room air",
    "blow_by": "blow-by",
    "nasal_cannula": "nasal cannula",
    "simple_face_mask": "simple face mask",
    "venturi": "Venturi mask",
    "non_rebreather": "non-rebreather mask",
    "hfnc": "high-flow nasal cannula (HFNC)",
    "cpap": "CPAP",
    "bipap": "BiPAP",
    "ventilator": "ventilator",
}

# Antipyretics and anti-cytokine therapies: given after a CRS fever, fever is no longer
# required for the grade (CLINICAL.md). prednisone is added to the corticosteroids listed.
MASKING_DRUGS = frozenset(
    {
        "tocilizumab",
        "siltuximab",
        "anakinra",
        "dexamethasone",
        "methylprednisolone",
        "hydrocortisone",
        "prednisolone",
        "prednisone",
        "paracetamol",
        "acetaminophen",
        "ibuprofen",
        "metamizole",
    }
)
# A medication entry whose name contains this is a fluid bolus ("crystalloid bolus"): given
# for a low cuff reading, it confirms the hypotension (treated, not requiring vasopressors).
FLUID_BOLUS_MARK = "bolus"
STEROIDS = frozenset(
    {"dexamethasone", "methylprednisolone", "hydrocortisone", "prednisolone", "prednisone"}
)
# The unit a dose of each drug is given in. A care event carries the number only (SPEC.md):
# the dashboard's entry form asks for this unit and every list shows it beside the number
# ("tocilizumab 8 mg/kg"); a drug not listed shows "unit not recorded", never a guess.
DOSE_UNITS = {
    "tocilizumab": "mg/kg",
    "siltuximab": "mg/kg",
    "anakinra": "mg",
    "dexamethasone": "mg",
    "methylprednisolone": "mg",
    "hydrocortisone": "mg",
    "prednisolone": "mg",
    "prednisone": "mg",
    "paracetamol": "mg",
    "acetaminophen": "mg",
    "ibuprofen": "mg",
    "metamizole": "mg",
    "norepinephrine": "mcg/kg/min",
    "epinephrine": "mcg/kg/min",
    "phenylephrine": "mcg/kg/min",
    "dopamine": "mcg/kg/min",
    "vasopressin": "units/min",
}

# -- Drug vocabulary (closed): what a care event may name -----------------------------
# A care event's drug is matched against these after normalisation (`drug_key`: Unicode
# NFKC, case-folded, spaces collapsed); brand names and synonyms map to one name. A name
# outside the vocabulary is stored as free text and never changes a grade. A name that
# only looks like one of these (a Cyrillic "о" in "tocilizumab") is refused.
MAX_DRUG_NAME = 64
VASOPRESSORS = frozenset(
    {
        "norepinephrine",
        "epinephrine",
        "phenylephrine",
        "dopamine",
        VASOPRESSIN,
        "angiotensin ii",
        "metaraminol",
        "ephedrine",
        "terlipressin",
    }
)
MEDICATIONS = MASKING_DRUGS | {
    "ruxolitinib",
    "etanercept",
    "infliximab",
    "levetiracetam",
    "lorazepam",
    "diazepam",
    "midazolam",
    "phenytoin",
    "furosemide",
    "cefepime",
    "meropenem",
    "piperacillin-tazobactam",
    "vancomycin",
    "filgrastim",
}
DRUG_SYNONYMS: dict[str, str] = {
    "noradrenaline": "norepinephrine",
    "levophed": "norepinephrine",
    "adrenaline": "epinephrine",
    "neosynephrine": "phenylephrine",
    "angiotensin 2": "angiotensin ii",
    "giapreza": "angiotensin ii",
    "actemra": "tocilizumab",
    "roactemra": "tocilizumab",
    "sylvant": "siltuximab",
    "kineret": "anakinra",
    "decadron": "dexamethasone",
    "solu-medrol": "methylprednisolone",
    "tylenol": "acetaminophen",
    "keppra": "levetiracetam",
    "pip-tazo": "piperacillin-tazobactam",
}
# Letters of other alphabets drawn like Latin ones (Unicode confusables, the ones that
# matter here): a drug name written with them is refused, not taken for the real one.
CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁոɡеАВЕКМНОРСТХІЈЅαοτνιρκΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdngeABEKMHOPCTXIJSaotvipkABEZHIKMNOPTYX",
)


def drug_key(name: str) -> str:
    """The form drug names are compared in: NFKC, case-folded, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def canonical_drug(name: str, vocabulary: frozenset[str]) -> str | None:
    """The vocabulary's name for `name` (synonyms included), or None."""
    key = drug_key(name)
    key = DRUG_SYNONYMS.get(key, key)
    return key if key in vocabulary else None


def lookalike_of(name: str) -> str | None:
    """The known drug a name imitates with letters of another alphabet, or None."""
    key = drug_key(name)
    if key.isascii():
        return None
    skeleton = key.translate(CONFUSABLES)
    skeleton = DRUG_SYNONYMS.get(skeleton, skeleton)
    return skeleton if skeleton in VASOPRESSORS | MEDICATIONS else None


# -- Vital signs: units and the plausible physical range a reading must fall in --------
# Outside it the reading is impossible (a heart rate of 900, SpO2 of 120): the message is
# rejected. Inside it, odd values (HR 0 from a lead falling off) are accepted and left to
# the clinical layer to distrust.
VITAL_RANGES: dict[str, tuple[float, float, str]] = {
    "hr": (0, 300, "/min"),
    "rr": (0, 80, "/min"),
    "spo2": (0, 100, "%"),
    "sbp": (0, 300, "mmHg"),
    "dbp": (0, 250, "mmHg"),
    "map": (0, 250, "mmHg"),
    "temp_c": (25.0, 45.0, "Cel"),
    "o2_flow_lpm": (0, 80, "L/min"),
    "fio2": (0.21, 1.0, "1"),
}
NUMERIC_VITALS = tuple(VITAL_RANGES)
ACVPU = ("A", "C", "V", "P", "U")
VITALS = (*NUMERIC_VITALS, "acvpu")  # every field an observation may carry
CEREBRAL_EDEMA = ("focal", "diffuse")

# -- Names ---------------------------------------------------------------------------------
NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # a ward or a bed (SPEC.md, MQTT topics)


def meta() -> dict:
    """What the dashboard's pages need of the above (served as `/api/meta`)."""
    return {
        "fever_c": FEVER_C,
        "sbp_low": SBP_LOW,
        "map_low": MAP_LOW,
        "spo2_low": SPO2_LOW,
        "spo2_low_scale2": SPO2_LOW_SCALE2,
        "o2_devices": [{"id": d, "name": DEVICE_NAME[d]} for d in O2_DEVICES],
        "steroids": sorted(STEROIDS),
        "masking_drugs": sorted(MASKING_DRUGS),
        "vasopressors": sorted(VASOPRESSORS),
        "medications": sorted(MEDICATIONS),
        "vital_units": {k: v[2] for k, v in VITAL_RANGES.items()},
        "dose_units": dict(DOSE_UNITS),
    }

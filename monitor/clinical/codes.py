"""The code tables of device data, declared once: LOINC, IEEE 11073-10101 (MDC), UCUM.

Every decoder (FHIR, HL7 v2) and the FHIR export read these tables; CLINICAL.md's "Codes
for device data" lists the same codes for people.

Sources for the MDC codes (code = partition * 65536 + term code; partition 2 is SCADA):
- HL7 Denmark DK Core, ValueSet dk-core-IEEEBasicObservation (IEEE 11073-10101 codes with
  their reference ids and definitions): pulse 149514/149522/149530/149546, heart rate
  147842/149554/149562, respiration 151562/151570/151578/151594/151602/151650/151658,
  temperature 150364/150368/150388/150392/188420/188424/188428/188452/188456, SpO2
  150324/150456, non-invasive pressure 150020-150023.
- IHE PCD-01 examples of the GE B40 monitor's HL7 interface manual (150033-150035
  MDC_PRESS_BLD_ART_SYS/DIA/MEAN, 149522 MDC_BLD_PULS_RATE_INV) and Mindray eGateway
  captures (150037-150039 MDC_PRESS_BLD_ART_ABP_SYS/DIA/MEAN).
"""

from __future__ import annotations

# -- LOINC (http://loinc.org): the vitals CRSWatch reads, for FHIR and HL7 (LN) ---------------
LOINC_VITALS: dict[str, str] = {
    "8867-4": "hr",  # Heart rate
    "9279-1": "rr",  # Respiratory rate
    "59408-5": "spo2",  # Oxygen saturation ... by Pulse oximetry
    "2708-6": "spo2",  # Oxygen saturation in Arterial blood (FHIR vital-signs SpO2)
    "8310-5": "temp_c",  # Body temperature
    "8331-1": "temp_c",  # Oral temperature
    "8332-9": "temp_c",  # Rectal temperature
    "8333-7": "temp_c",  # Tympanic membrane temperature
    "8328-7": "temp_c",  # Axillary temperature
    "8329-5": "temp_c",  # Body temperature - Core
    "8480-6": "sbp",  # Systolic blood pressure
    "8462-4": "dbp",  # Diastolic blood pressure
    "8478-0": "map",  # Mean blood pressure
    "3151-8": "o2_flow_lpm",  # Inhaled oxygen flow rate
    "3150-0": "fio2",  # Inhaled oxygen concentration
}
LOINC_BP_PANELS = frozenset({"85354-9", "55284-4"})  # components carry sbp/dbp/map
LOINC_SYSTEMS = frozenset({"http://loinc.org", "urn:oid:2.16.840.1.113883.6.1"})
LOINC_SYSTEM = "http://loinc.org"
# What the FHIR export writes for each vital: (LOINC code, display, UCUM unit).
LOINC_OUT: dict[str, tuple[str, str, str]] = {
    "hr": ("8867-4", "Heart rate", "/min"),
    "rr": ("9279-1", "Respiratory rate", "/min"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    "temp_c": ("8310-5", "Body temperature", "Cel"),
    "sbp": ("8480-6", "Systolic blood pressure", "mm[Hg]"),
    "dbp": ("8462-4", "Diastolic blood pressure", "mm[Hg]"),
    "map": ("8478-0", "Mean blood pressure", "mm[Hg]"),
    "o2_flow_lpm": ("3151-8", "Inhaled oxygen flow rate", "L/min"),
    "fio2": ("3150-0", "Inhaled oxygen concentration", "%"),
}
UCUM_SYSTEM = "http://unitsofmeasure.org"

# -- IEEE 11073-10101 (MDC) ---------------------------------------------------------------------
MDC_SYSTEMS = frozenset({"urn:iso:std:iso:11073:10101"})  # FHIR's system for MDC codes
# Code, reference id, vital. Of two sources of one vital at one time, the one listed first
# wins (its rank is its place among the vital's codes), so two sources that disagree never
# reject a message:
# - heart rate: the ECG rate beats every pulse rate (arterial line, oximeter, cuff) over
#   the whole message (a pulse rate is used only when the message has no ECG heart rate).
# - blood pressure: arterial beats cuff, per time point. A cuff reading is intermittent and
#   carries its own time; an arterial line at the same moment is the better reading, but a
#   cuff reading taken at another time is a measurement of its own and is kept.
# - respiration: the monitor's chosen rate, then airway flow, CO2, impedance, and last the
#   pressure, acoustic and plethysmographic estimates.
# - temperature: core first, the peripheral sites after.
_MDC: tuple[tuple[str, str, str], ...] = (
    ("147842", "MDC_ECG_HEART_RATE", "hr"),
    ("149522", "MDC_BLD_PULS_RATE_INV", "hr"),
    ("149530", "MDC_PULS_OXIM_PULS_RATE", "hr"),
    ("149514", "MDC_PULS_RATE", "hr"),
    ("149546", "MDC_PULS_RATE_NON_INV", "hr"),
    ("149554", "MDC_TTHOR_HEART_RATE", "hr"),
    ("149562", "MDC_PALPATION_HEART_RATE", "hr"),
    ("151562", "MDC_RESP_RATE", "rr"),
    ("151570", "MDC_AWAY_RESP_RATE", "rr"),
    ("151594", "MDC_CO2_RESP_RATE", "rr"),
    ("151578", "MDC_TTHOR_RESP_RATE", "rr"),
    ("151602", "MDC_PRESS_RESP_RATE", "rr"),
    ("151650", "MDC_ACOUSTIC_RESP_RATE", "rr"),
    ("151658", "MDC_PULS_OXIM_PLETH_RESP_RATE", "rr"),
    ("150456", "MDC_PULS_OXIM_SAT_O2", "spo2"),
    ("150324", "MDC_SAT_O2_ART", "spo2"),
    ("150368", "MDC_TEMP_CORE", "temp_c"),
    ("150344", "MDC_TEMP", "temp_c"),
    ("150364", "MDC_TEMP_BODY", "temp_c"),
    ("188420", "MDC_TEMP_RECT", "temp_c"),
    ("188456", "MDC_TEMP_GIT", "temp_c"),
    ("150392", "MDC_TEMP_TYMP", "temp_c"),
    ("188428", "MDC_TEMP_EAR", "temp_c"),
    ("188424", "MDC_TEMP_ORAL", "temp_c"),
    ("188452", "MDC_TEMP_AXILLA", "temp_c"),
    # 150388 MDC_TEMP_SKIN is left out on purpose: skin is not body temperature.
    ("150033", "MDC_PRESS_BLD_ART_SYS", "sbp"),
    ("150034", "MDC_PRESS_BLD_ART_DIA", "dbp"),
    ("150035", "MDC_PRESS_BLD_ART_MEAN", "map"),
    ("150037", "MDC_PRESS_BLD_ART_ABP_SYS", "sbp"),
    ("150038", "MDC_PRESS_BLD_ART_ABP_DIA", "dbp"),
    ("150039", "MDC_PRESS_BLD_ART_ABP_MEAN", "map"),
    ("150021", "MDC_PRESS_BLD_NONINV_SYS", "sbp"),
    ("150022", "MDC_PRESS_BLD_NONINV_DIA", "dbp"),
    ("150023", "MDC_PRESS_BLD_NONINV_MEAN", "map"),
    ("150301", "MDC_PRESS_CUFF_SYS", "sbp"),
    ("150302", "MDC_PRESS_CUFF_DIA", "dbp"),
    ("150303", "MDC_PRESS_CUFF_MEAN", "map"),
    ("152196", "MDC_CONC_AWAY_O2_INSP", "fio2"),
)


def _ranked(table: tuple[tuple[str, str, str], ...]) -> tuple[tuple[str, str, str, int], ...]:
    seen: dict[str, int] = {}
    out = []
    for code, name, vital in table:
        out.append((code, name, vital, seen.get(vital, 0)))
        seen[vital] = seen.get(vital, 0) + 1
    return tuple(out)


MDC_OBSERVATIONS = _ranked(_MDC)  # (code, reference id, vital, rank)
MDC_BY_CODE = {code: (vital, rank) for code, _, vital, rank in MDC_OBSERVATIONS}
MDC_BY_NAME = {name: (vital, rank) for _, name, vital, rank in MDC_OBSERVATIONS} | {
    "MDC_TEMP_AXIL": MDC_BY_CODE["188452"],  # a name some vendors send
}

# MDC units -> UCUM.
MDC_UNITS: tuple[tuple[str, str, str], ...] = (
    ("264864", "MDC_DIM_BEAT_PER_MIN", "{beats}/min"),
    ("264928", "MDC_DIM_RESP_PER_MIN", "{breaths}/min"),
    ("262688", "MDC_DIM_PERCENT", "%"),
    ("266016", "MDC_DIM_MMHG", "mm[Hg]"),
    ("268192", "MDC_DIM_DEGC", "Cel"),
    ("266560", "MDC_DIM_FAHR", "[degF]"),
    ("265216", "MDC_DIM_L_PER_MIN", "L/min"),
    ("262144", "MDC_DIM_DIMLESS", "1"),
)
MDC_UNIT_BY_CODE = {code: ucum for code, _, ucum in MDC_UNITS}
MDC_UNIT_BY_NAME = {name: ucum for _, name, ucum in MDC_UNITS} | {"MDC_DIM_DEGF": "[degF]"}

# -- Data that is not a patient's -----------------------------------------------------------
# HL7 v2 MSH-11 processing ID (table 0103): P production; D debugging and T training are
# not patient data.
HL7_NOT_PATIENT_PROCESSING = {"D": "debugging", "T": "training"}
# OBX-8 (abnormal flags) as IHE PCD gateways fill it from the IEEE 11073-10201
# MeasurementStatus of the device: test-data and demo-data are not patient data.
HL7_NOT_PATIENT_FLAGS = frozenset({"TEST-DATA", "DEMO-DATA", "TEST", "DEMO", "SIMULATED"})
# FHIR meta.security / meta.tag codes that mark test data (v3 ActReason HTEST "test health
# data") and the simulated/demo tags of device gateways.
FHIR_NOT_PATIENT_CODES = frozenset({"HTEST", "TEST", "DEMO", "SIMULATED", "TEST-DATA", "DEMO-DATA"})

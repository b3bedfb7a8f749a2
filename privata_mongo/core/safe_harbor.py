"""The name defaults, one rule per HIPAA Safe Harbor identifier category.

45 CFR 164.514(b)(2)(i) lists eighteen kinds of identifier, (A) to (R), that must go before
health information counts as de-identified. A field whose name says it holds one of them is
identity data by default; ``explain()`` names the category that decided it. Three forms of
entry keep the defaults useful without breaking ordinary models:

* ``"zip_code"``: the field's name, compared normalised (``zipCode``, ``ZIP_CODE``).
* ``"*_phone"``: any name whose **last word** is ``phone`` (``home_phone``,
  ``emergencyContactPhone``); words split at ``_``, ``-`` and camelCase. Never a substring
  (``microphone`` is not a phone).
* ``"person:name"``: the name, but only in a model that **describes a person**: its class name
  has a person word (``Patient``, ``User``, ``Member`` … ``PERSON_WORDS``) or a name default
  classifies one of its fields as an identifier only people have (a personal name, birth
  date, SSN, medical record or health-plan number, licence, biometric, national id). Generic
  names (``name``, ``city``, ``url``, ``photo``, ``serial_number``) take this form.
  ``Drug.name`` and ``Hospital.city`` stay clinical; ``Patient.name`` and ``Customer.city``
  do not.

Dates (C) are identity data only where the date is about the person: birth, admission,
discharge and death, as calendar dates (``admission_date``, ``admitted_on``). Event timestamps
(``admitted_at``, ``created_at``, ``updated_at``) and visit or service dates stay clinical: an
application sets a timestamp at the moment of the event, which the audit trail records anyway
(a ``$currentDate`` is the time of its own audit record), and sorting and range queries on them
are the application's everyday work; declare one ``pii=True`` when it is sensitive. A name
no entry covers (``notes``) is not classified by name: the content scanner
(``privata_mongo.scan``) reports likely identifiers in its free text before a migration.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from privata_mongo.core.schema import normalise_name

__all__ = [
    "PERSON_WORDS",
    "RULES",
    "Entry",
    "SafeHarborRule",
    "entries",
    "is_person_model",
    "words",
]


@dataclass(frozen=True, slots=True)
class SafeHarborRule:
    """One Safe Harbor category and the field names that hold it.

    Attributes:
        letter: the paragraph of 45 CFR 164.514(b)(2)(i), ``A`` to ``R``.
        category: what the paragraph lists, in its words.
        names: name default entries (the three forms of the module docstring).
        searchable: the values are identifiers people are looked up by, so the fields get a
            blind index by default (names, places and dates do not: equal terms would reveal
            equal values, which repeat across people).
        personal: only people have it: a model holding one describes a person.
    """

    letter: str
    category: str
    names: frozenset[str]
    searchable: bool = False
    personal: bool = False

    @property
    def citation(self) -> str:
        """How ``explain()`` names the rule."""
        return f"HIPAA Safe Harbor 164.514(b)(2)(i)({self.letter}) {self.category}"


def _rule(
    letter: str, category: str, names: str, *, searchable: bool = False, personal: bool = False
) -> SafeHarborRule:
    return SafeHarborRule(letter, category, frozenset(names.split()), searchable, personal)


# fmt: off
RULES: Final = (
    _rule("A", "names", "first_name last_name middle_name full_name given_name family_name "
          "maiden_name mothers_maiden_name surname forename patient_name legal_name "
          "person:name person:display_name person:preferred_name person:nickname",
          personal=True),
    _rule("B", "geographic subdivisions smaller than a state", "address street_address "
          "home_address postal_address mailing_address residential_address address_line1 "
          "address_line2 person:street zip zip_code zipcode postal_code postcode post_code *_zip "
          "*_zipcode *_postcode person:city person:town person:county person:district "
          "person:neighborhood person:neighbourhood geolocation home_location gps_coordinates "
          "person:latitude person:longitude person:location"),
    _rule("C", "dates (except year) directly related to an individual", "date_of_birth "
          "birth_date birthdate birthday dob admission_date admitted_on admit_date "
          "discharge_date discharged_on date_of_death death_date deceased_on", personal=True),
    _rule("D", "telephone numbers", "phone phone_number telephone telephone_number tel mobile "
          "mobile_phone mobile_number person:cell cell_phone cellphone *_phone *_telephone "
          "*_phone_number *_mobile_number", searchable=True),
    _rule("E", "fax numbers", "fax fax_number *_fax *_fax_number", searchable=True),
    _rule("F", "electronic mail addresses", "email email_address e_mail *_email "
          "*_email_address", searchable=True),
    _rule("G", "social security numbers", "ssn social_security_number social_security "
          "*_ssn", searchable=True, personal=True),
    _rule("H", "medical record numbers", "mrn medical_record_number medical_record_no "
          "medical_record_id chart_number *_mrn", searchable=True, personal=True),
    _rule("I", "health plan beneficiary numbers", "health_plan_number health_plan_id "
          "insurance_number insurance_id member_number beneficiary_id beneficiary_number "
          "policy_number subscriber_id medicare_number medicaid_number",
          searchable=True, personal=True),
    _rule("J", "account numbers", "account_number bank_account bank_account_number iban "
          "card_number credit_card credit_card_number *_account_number", searchable=True),
    _rule("K", "certificate/license numbers", "license_number licence_number "
          "drivers_license drivers_licence driver_license_number drivers_license_number "
          "passport passport_number certificate_number *_license_number *_licence_number",
          searchable=True, personal=True),
    _rule("L", "vehicle identifiers and serial numbers, including license plate numbers",
          "person:vin person:vehicle_id license_plate licence_plate plate_number "
          "vehicle_registration",
          searchable=True),
    _rule("M", "device identifiers and serial numbers", "person:device_id "
          "person:device_serial person:device_serial_number person:serial_number imei udid "
          "mac_address person:*_device_id person:*_serial_number",
          searchable=True),
    _rule("N", "web universal resource locators (URLs)", "personal_url profile_url "
          "person:homepage person:website person:url person:web_page"),
    _rule("O", "internet protocol (IP) address numbers", "ip ip_address ipaddress "
          "remote_addr *_ip *_ip_address", searchable=True),
    _rule("P", "biometric identifiers, including finger and voice prints", "biometric "
          "biometrics biometric_data fingerprint fingerprints voiceprint voice_print "
          "retina_scan iris_scan face_template facial_geometry", personal=True),
    _rule("Q", "full face photographic images and any comparable images", "person:photo "
          "person:photograph person:picture person:portrait face_photo profile_photo "
          "profile_picture profile_image avatar headshot selfie person:*_photo"),
    _rule("R", "any other unique identifying number, characteristic, or code", "national_id "
          "national_id_number tax_id taxpayer_id nhs_number health_card_number",
          searchable=True, personal=True),
)
# fmt: on

PERSON_WORDS: Final = frozenset(
    {
        *("patient", "person", "people", "user", "member", "customer", "client", "contact"),
        *("employee", "staff", "doctor", "physician", "nurse", "clinician", "practitioner"),
        *("subject", "participant", "guardian", "caregiver", "carer", "student", "applicant"),
        *("beneficiary", "donor", "resident", "individual"),
    }
)
"""Words of a model's class name that say it describes a person (``HospitalPatient``)."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[_\-\s.]+")


def words(name: str) -> tuple[str, ...]:
    """The words of a field or class name: ``homePhone`` and ``home_phone`` → home, phone."""
    return tuple(w.lower() for w in _SEPARATORS.split(_CAMEL.sub("_", name)) if w)


@dataclass(frozen=True, slots=True)
class Entry:
    """One name default entry, parsed (see the module docstring for the three forms)."""

    text: str
    exact: str | None
    last_words: tuple[str, ...] | None
    person_only: bool
    rule: SafeHarborRule | None

    def matches(self, name: str, person: bool) -> bool:
        """Whether a field called ``name`` is identity data by this entry."""
        if self.person_only and not person:
            return False
        if self.exact is not None:
            return normalise_name(name) == self.exact
        assert self.last_words is not None  # noqa: S101 - one of the two is set by parse
        found = words(name)
        tail = self.last_words
        return len(found) > len(tail) and found[-len(tail) :] == tail


_BY_TEXT: Final = {name: rule for rule in RULES for name in rule.names}


def _parse(text: str) -> Entry:
    person_only = text.startswith("person:")
    body = text.removeprefix("person:")
    rule = _BY_TEXT.get(text)
    if body.startswith("*"):
        return Entry(text, None, words(body[1:]), person_only, rule)
    return Entry(text, normalise_name(body), None, person_only, rule)


def entries(names: Iterable[str]) -> tuple[Entry, ...]:
    """Parse name default entries; exact entries first, so they explain a field first."""
    parsed = [_parse(n) for n in sorted(set(names))]
    return tuple(sorted(parsed, key=lambda e: (e.exact is None, e.person_only)))


def is_person_model(model: str) -> bool:
    """Whether a model's class name says it describes a person (``PERSON_WORDS``)."""
    return any(w in PERSON_WORDS for w in words(model))

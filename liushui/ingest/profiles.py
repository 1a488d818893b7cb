"""Declarative bank-export layout profiles: one YAML file per layout, no code per bank.

A profile (``liushui/profiles/*.yaml``, format in ``docs/profiles.md``) says how to find the header
line, where the data stops, which bank column feeds which canonical field, and the amount / date /
currency conventions. This module is the API; the work is done in:

- ``load_profiles(directory)`` parses and validates the YAML files (``ProfileError`` on a bad file);
  ``load_profile_set(user_dir)`` merges the shipped profiles with a user folder's (a user profile
  replaces a shipped one by name) and skips an invalid file with its reason: `liushui.ingest.profile_spec`;
- ``detect_profile(path, profiles)`` picks the profile whose header signature appears in the first
  lines of the file (``None`` when nothing matches, including the canonical layout):
  `liushui.ingest.profile_detect`;
- ``read_profiled(path, profile)`` returns one string row per data line, normalised to canonical
  TEXT forms (not type-parsed), with ``source_row``, ``raw`` and reader-level rejects:
  `liushui.ingest.profile_read`, on the text split by `liushui.ingest.profile_text` (decoding, header,
  records) and the cell expressions of `liushui.ingest.profile_cells`;
- ``LayoutError`` is a whole-file failure with a message that names the file and the problem.

Python only decodes the bytes and splits lines / cells (csv module); all cell work is done with
Polars expressions.
"""

from __future__ import annotations

from liushui.ingest.profile_detect import AmbiguousLayout, detect_profile, has_header, matching_profiles, near_misses
from liushui.ingest.profile_read import OUTPUT_COLUMNS, read_profiled
from liushui.ingest.profile_spec import (
    SHIPPED_PROFILES_DIR,
    Profile,
    ProfileError,
    ProfileSet,
    SkippedProfile,
    load_profile_set,
    load_profiles,
)
from liushui.ingest.profile_text import LayoutError

__all__ = [
    "OUTPUT_COLUMNS",
    "AmbiguousLayout",
    "SHIPPED_PROFILES_DIR",
    "LayoutError",
    "Profile",
    "ProfileError",
    "ProfileSet",
    "SkippedProfile",
    "detect_profile",
    "has_header",
    "load_profile_set",
    "load_profiles",
    "matching_profiles",
    "near_misses",
    "read_profiled",
]

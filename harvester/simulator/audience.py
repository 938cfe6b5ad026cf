"""Who an account's followers (or engaged audience) are: demographic breakdowns that add up.

An audience of N accounts: a share of them has demographic data (the reference: "Only viewers
for whom we have demographic data are used"), split by largest remainder over age x gender and
over countries, and each country's count over its listed cities and the rest of the country. So
every breakdown sums to at most N, age and gender to exactly the accounts with data, the age x
gender table to the age and the gender results, and a city to at most its country. A request
gets the top 45 non-zero combinations ("Demographic metrics only return the top 45
performers"), largest first: summing a cut breakdown gives less than N, as the reference warns.

Two breakdowns across the two groups (``country,age``) split each place's count over the age x
gender shares, so their sum is the place's.
"""

from __future__ import annotations

import heapq
import math

import msgspec

from .. import catalog
from .draws import split

AGE_SHARES = (0.06, 0.28, 0.32, 0.17, 0.09, 0.05, 0.03)
"""Instagram's audience by age band, 13-17 to 65+ (GUESS, after published ad-audience shares)."""
KNOWN = (0.86, 0.98)
"""Share of an audience with demographic data (GUESS)."""
CITIES_SHARE = 0.4
"""Share of a country's audience in its listed cities, on average (GUESS)."""
REGION_COUNTRY = {
    "California": "US", "New York": "US", "Texas": "US", "São Paulo (state)": "BR", "Rio de Janeiro (state)": "BR",
    "England": "GB", "Île-de-France": "FR", "Community of Madrid": "ES", "Lombardy": "IT", "Berlin": "DE",
    "Bavaria": "DE", "Maharashtra": "IN", "Delhi": "IN", "Jakarta": "ID", "Mexico City": "MX", "Jalisco": "MX",
    "Istanbul Province": "TR", "Tokyo": "JP", "Buenos Aires": "AR", "Bogotá": "CO", "Lima Region": "PE",
    "Ontario": "CA", "New South Wales": "AU", "Victoria": "AU",
}
"""The country of each region the catalog's cities are named with ("Paris, Île-de-France")."""
AGE_GENDER_DRAWS = 24
COUNTRY_DRAWS = 62
CITY_DRAWS = 49

Combos = list[tuple[tuple[str, ...], int]]


class Audience(msgspec.Struct, frozen=True, gc=False):
    """An audience's counts: age x gender (age-major), per country and per city, catalog order."""

    age_gender: tuple[int, ...]
    countries: tuple[int, ...]
    cities: tuple[int, ...]

    def top(self, breakdowns: tuple[str, ...]) -> Combos:
        """The :data:`~harvester.catalog.DEMOGRAPHIC_TOP` largest non-zero results of ``breakdowns``."""
        cells = ((c, v) for c, v in self.combos(breakdowns) if v > 0)
        return heapq.nlargest(catalog.DEMOGRAPHIC_TOP, cells, key=lambda x: (x[1], x[0]))

    def combos(self, breakdowns: tuple[str, ...]) -> Combos:
        """Every combination of ``breakdowns``' values with its count, in the breakdowns' order."""
        people = [b for b in breakdowns if b in ("age", "gender")]
        places = [b for b in breakdowns if b in ("country", "city")]
        out: Combos = []
        shares = self._people(tuple(people))
        for place, count in self._places(tuple(places)):
            parts = split(count, [v for _, v in shares]) if places else [v for _, v in shares]
            for (who, _), part in zip(shares, parts, strict=True):
                values = dict(zip(places, place, strict=True)) | dict(zip(people, who, strict=True))
                out.append((tuple(values[b] for b in breakdowns), part))
        return out

    def _people(self, people: tuple[str, ...]) -> Combos:
        ages, genders = catalog.BREAKDOWN_VALUES["age"], catalog.BREAKDOWN_VALUES["gender"]
        g = len(genders)
        cells = {(a, s): self.age_gender[i * g + j] for i, a in enumerate(ages) for j, s in enumerate(genders)}
        if not people:
            return [((), sum(self.age_gender))]
        if people == ("age",):
            return [((a,), sum(cells[a, s] for s in genders)) for a in ages]
        if people == ("gender",):
            return [((s,), sum(cells[a, s] for a in ages)) for s in genders]
        if people == ("age", "gender"):
            return [((a, s), cells[a, s]) for a in ages for s in genders]
        return [((s, a), cells[a, s]) for s in genders for a in ages]

    def _places(self, places: tuple[str, ...]) -> Combos:
        countries, cities = catalog.BREAKDOWN_VALUES["country"], catalog.BREAKDOWN_VALUES["city"]
        if not places:
            return [((), sum(self.age_gender))]
        if places == ("country",):
            return [((c,), v) for c, v in zip(countries, self.countries, strict=True)]
        located = [(city, city_country(city), v) for city, v in zip(cities, self.cities, strict=True)]
        if places == ("city",):
            return [((city,), v) for city, _, v in located]
        if places == ("country", "city"):
            return [((country, city), v) for city, country, v in located]
        return [((city, country), v) for city, country, v in located]


def city_country(city: str) -> str:
    """The country code of a catalog city ("Paris, Île-de-France" -> "FR")."""
    return REGION_COUNTRY[city.split(", ", 1)[1]]


def draw(size: int, people: list[float], places: list[float], local: list[float]) -> Audience:
    """An audience of ``size`` accounts from :data:`AGE_GENDER_DRAWS`, :data:`COUNTRY_DRAWS` and
    :data:`CITY_DRAWS` uniforms."""
    known = round(size * (KNOWN[0] + (KNOWN[1] - KNOWN[0]) * people[0]))
    countries = _countries(known, places)
    return Audience(tuple(_age_gender(known, people)), tuple(countries), tuple(_cities(countries, local)))


def _age_gender(known: int, u: list[float]) -> list[int]:
    """Age x gender counts: an account's audience leans to one gender and to younger or older."""
    female = 0.2 + 0.65 * u[0]
    unknown = 0.02 + 0.04 * u[1]
    genders = (female, max(0.0, 1.0 - female - unknown), unknown)
    tilt = (u[2] - 0.5) * 0.8
    weights = [share * math.exp(tilt * (i - 2.5)) * g * (0.8 + 0.4 * u[3 + i * 3 + j])
               for i, share in enumerate(AGE_SHARES) for j, g in enumerate(genders)]
    return split(known, weights)


def _countries(known: int, u: list[float]) -> list[int]:
    """Per country: a home country among the 20 largest holds a third to two thirds; the rest
    spread by the catalog's order (roughly Instagram's countries by size)."""
    n = len(catalog.BREAKDOWN_VALUES["country"])
    weights = [(0.3 + 1.4 * u[i]) / (i + 3) for i in range(n)]
    home = int(u[n] * 20)
    weights[home] += sum(weights) * (0.5 + 1.5 * u[n + 1])
    return split(known, weights)


def _cities(countries: list[int], u: list[float]) -> list[int]:
    """Per city: its share of its country's count, the rest of the country in no listed city."""
    codes = catalog.BREAKDOWN_VALUES["country"]
    count = dict(zip(codes, countries, strict=True))
    cities = catalog.BREAKDOWN_VALUES["city"]
    out = [0] * len(cities)
    by_country: dict[str, list[int]] = {}
    for i, city in enumerate(cities):
        by_country.setdefault(city_country(city), []).append(i)
    for code, members in by_country.items():
        weights = [CITIES_SHARE * (0.3 + 1.4 * u[i]) / len(members) for i in members]
        parts = split(count[code], [*weights, max(0.0, 1.0 - sum(weights))])
        for i, part in zip(members, parts, strict=False):
            out[i] = part
    return out

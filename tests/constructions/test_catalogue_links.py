"""The theory catalogue and the constructions registry name each other consistently."""

from sepbench import constructions, theory


def test_every_catalogue_construction_exists_and_realises_that_result() -> None:
    registry = constructions.registry()
    for result in theory.results():
        for name in result.constructions:
            assert name in registry, f"{result.id} names unknown construction {name!r}"
            assert registry[name].result_id == result.id, (name, result.id)


def test_every_construction_of_a_catalogued_result_is_listed_there() -> None:
    ids = set(theory.ids())
    for name, entry in constructions.registry().items():
        if entry.result_id in ids:
            assert name in theory.get(entry.result_id).constructions, (name, entry.result_id)


def test_catalogued_widths_equal_the_built_widths() -> None:
    # the catalogue's formula and the construction's width agree where the formula is exact
    built = constructions.get("dyck22_automaton").build(16)
    assert theory.min_width("B24-E", 16) == built.width == 13
    for name, cell in [("dyck_next_elman", "elman"), ("dyck_next_lstm", "lstm")]:
        hb = constructions.get(name).build(64, types=4, depth=3)
        assert theory.min_width("H20", 64, types=4, depth=3, cell=cell) == hb.width


def test_every_registered_construction_realises_a_catalogued_result() -> None:
    # the induction head included (IND): the report and curves.model_class look it up
    for name, entry in constructions.registry().items():
        result = theory.get(entry.result_id)  # UserError if uncatalogued
        assert name in result.constructions, (name, entry.result_id)

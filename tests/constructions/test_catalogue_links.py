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


def test_one_bit_per_unit_constructions_are_judged_as_bit_counts() -> None:
    """W24-RAG and W24-H count O(log n) bits; their catalogue form is the packed width in
    p-bit numbers (constant). The testbed's networks spend one unit per bit, so their widths
    grow like log N: judged in numbers they would be "inconsistent", judged as the bit counts
    they declare (unit_bits) against the bit form (log) they are consistent. Only results
    stated in bits allow it."""
    from sepbench.constructions.hybrid_tf import index_hybrid_width
    from sepbench.constructions.is_tree_rag import rag_width

    registry = constructions.registry()
    declared = {name for name, c in registry.items() if c.unit_bits}
    assert declared == {"is_tree_retrieval", "index_lookup_hybrid", "associative_recall_hybrid"}
    for name in declared:
        assert theory.get(registry[name].result_id).bits_form == "log", name
    ns = [8, 16, 32, 64, 128, 256]
    for name, widths in [
        ("is_tree_retrieval", [rag_width(n) for n in ns]),
        ("index_lookup_hybrid", [index_hybrid_width(n, 4) for n in ns]),
    ]:
        c = registry[name]
        fit = theory.fit_growth(ns, [float(w) for w in widths])
        v = c.judge(fit)
        assert v.outcome == "consistent" and "state bits (one per unit)" in v.hypothesis
        assert theory.verdict(c.result_id, fit).outcome == "inconsistent"  # in numbers
    # a bit count that grows linearly is not O(log N) bits: the bit-form check can fail
    linear = theory.fit_growth(ns, [float(n + 5) for n in ns])
    assert registry["index_lookup_hybrid"].judge(linear).outcome == "inconsistent"

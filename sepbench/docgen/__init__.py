"""The documentation generators: each writes one page of docs/ from the code and real runs.

* ``python -m sepbench.docgen.tasks`` — docs/tasks.md, from the task registry (examples
  sampled live);
* ``python -m sepbench.docgen.theory [PATH] [--check]`` — docs/theory.md, from the catalogue;
* ``python -m sepbench.docgen.constructions`` — docs/constructions.md and its figures, from
  real verification runs of every construction (minutes; ``--quick`` for a short check).

They sit above every domain package and ``report`` (whose plots they draw), so no domain
package imports upwards; tests fail when docs/tasks.md or docs/theory.md drift from the code.
The package imports none of its modules, so each runs once under ``python -m``.
"""

"""Contract tests: the two sides of a boundary agree, read from the real code on both sides.

The operator builds each step's argv and reads each step's result; the steps parse
that argv and write that result. Here the builders' argv meets the real CLI parser;
the step tests (tests/steps) check that each step's real output parses into its model.
"""

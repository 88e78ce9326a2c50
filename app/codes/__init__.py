"""One item, one code: serials, code batches, cases, labels and the code states."""

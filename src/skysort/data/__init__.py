"""The data contract and the arrays every stage reads: schema, labels, images, atomic writes."""

"""A pure model of what a configured cluster is and does: its nodes and what they offer."""

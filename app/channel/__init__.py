"""The sales channel: partners (HQ → agents → distributors), stores, territories, invites, regions."""

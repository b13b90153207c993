"""``bastion demo``: replay the poisoned-credit-model story and prove every control."""

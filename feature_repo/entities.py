"""The entity every feature view is keyed by: the user (join key user_id)."""

from feast import Entity, ValueType

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.INT64,
    description="A person answering the census survey; one user has several records over time.",
)

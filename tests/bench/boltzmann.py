"""Mesa's cheapest object model, as a yardstick: Boltzmann wealth with no space.

This is the model of Mesa's introductory tutorial in Mesa 3.5 style: every agent starts with one
unit of wealth and, when it has any, gives one unit to an agent picked at random from
``model.agents``; the model activates all agents in random order each step. Nothing is collected.
"""

from __future__ import annotations

import mesa


class MoneyAgent(mesa.Agent):
    """An agent with some wealth that it gives away one unit at a time."""

    def __init__(self, model: mesa.Model) -> None:
        super().__init__(model)
        self.wealth = 1

    def give_money(self) -> None:
        """Give one unit to a random agent (as in the tutorial, possibly itself)."""
        other = self.random.choice(self.model.agents)
        other.wealth += 1
        self.wealth -= 1

    def step(self) -> None:
        if self.wealth > 0:
            self.give_money()


class MoneyModel(mesa.Model):
    """``n`` money agents and no space."""

    def __init__(self, n: int, rng: int | None = None) -> None:
        super().__init__(rng=rng)
        MoneyAgent.create_agents(self, n)

    def step(self) -> None:
        self.agents.shuffle_do("step")


def run_boltzmann(n: int, steps: int, rng: int | None = None) -> MoneyModel:
    """Build a model of ``n`` agents and run it ``steps`` steps."""
    model = MoneyModel(n, rng=rng)
    for _ in range(steps):
        model.step()
    return model

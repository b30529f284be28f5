"""resim: an agent-based simulation of the rare-earth supply chain for policy questions.

```python
from sim import load_scenario, build_model, simulate
scenario = load_scenario("baseline", overrides={"policy.tariff.ndpr": 1.0})
model = build_model(scenario, seed=7)   # a mesa.Model; model.step() advances one month
frame = simulate(scenario, seed=7)      # pandas DataFrame: the timeseries columns for one run
```
"""

from sim.runner import build_model, simulate
from sim.scenario import ScenarioError, load_scenario

__all__ = ["ScenarioError", "build_model", "load_scenario", "simulate"]
__version__ = "0.1.0"

//! Scenarios: named states that routes share. A route with `state` matches only while its scenario is in that
//! state, and a route with `next_state` moves the scenario when it answers, so that what one route answers can
//! depend on what another answered before (the to-do list that has one item until a POST adds a second).
//!
//! A router owns one [`Scenarios`], made at load time with every scenario the routes name. Each route holds its
//! scenario's slot directly, so that a request reads the state with one atomic load and no lookup; a reload hands
//! the slots of the scenarios that still exist to the new router (see [`super::Router::adopt_state`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{SCENARIO_START, ScenarioConfig};

/// One scenario's current state, shared by its routes and kept across reloads.
#[derive(Debug)]
pub(crate) struct Slot(ArcSwap<String>);

impl Slot {
    fn new(start: &Arc<String>) -> Self {
        Slot(ArcSwap::new(Arc::clone(start)))
    }

    fn get(&self) -> Arc<String> {
        self.0.load_full()
    }
}

/// What a route does with its scenario.
#[derive(Debug)]
pub(crate) struct RouteScenario {
    name: String,
    slot: Arc<Slot>,
    /// The state the route requires, if any.
    state: Option<Arc<String>>,
    /// The state the route moves to; made once, so that a move does not allocate.
    next: Option<Arc<String>>,
}

impl RouteScenario {
    /// Whether the scenario is in the state the route requires (always, when it requires none).
    pub(crate) fn holds(&self) -> bool {
        match &self.state {
            None => true,
            Some(state) => **self.slot.0.load() == **state,
        }
    }

    /// Whether the state the route requires holds in `part` (the default partition when none).
    pub(crate) fn holds_in(&self, part: Option<&super::partition::Partition>) -> bool {
        let (Some(part), Some(want)) = (part, &self.state) else { return self.holds() };
        match part.scenario(&self.name) {
            Some(now) => *now == **want,
            None => want.as_str() == SCENARIO_START,
        }
    }

    /// Moves the scenario to the route's `next_state` in `part` (the default partition when none).
    pub(crate) fn advance_in(&self, part: Option<&super::partition::Partition>) {
        match (part, &self.next) {
            (Some(part), Some(next)) => part.set_scenario(&self.name, Arc::clone(next)),
            _ => self.advance(),
        }
    }

    /// Moves the scenario to the route's `next_state`, if it has one.
    pub(crate) fn advance(&self) {
        if let Some(next) = &self.next {
            self.slot.0.store(Arc::clone(next));
        }
    }

    /// The move this route makes, for a shared store: the scenario, the state the request matched in (`""`: any),
    /// and the next state. None when it makes none.
    pub(crate) fn move_spec(&self) -> Option<(&str, &str, &str)> {
        let next = self.next.as_deref()?;
        Some((self.name.as_str(), self.state.as_deref().map_or("", String::as_str), next.as_str()))
    }

    /// Why the route did not match, for the near-miss 404; none when its state holds.
    pub(crate) fn explain(&self) -> Option<String> {
        let want = self.state.as_ref()?;
        let now = self.slot.get();
        (*now != **want).then(|| format!("scenario `{}` is in state `{now}`, the route wants `{want}`", self.name))
    }
}

#[derive(Debug)]
struct Scenario {
    slot: Arc<Slot>,
    /// Every state a route names for it, and the start.
    states: BTreeSet<String>,
}

/// The scenarios of one router: every name a route mentions, its state, and the states its routes name.
#[derive(Debug)]
pub struct Scenarios {
    map: BTreeMap<String, Scenario>,
    start: Arc<String>,
}

impl Default for Scenarios {
    fn default() -> Self {
        Scenarios { map: BTreeMap::new(), start: Arc::new(SCENARIO_START.to_owned()) }
    }
}

/// One scenario as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioState {
    /// Its name.
    pub name: String,
    /// The state it is in.
    pub state: String,
    /// The states its routes name (`state` and `next_state`), and the start, sorted.
    pub states: Vec<String>,
}

/// Why a scenario could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// No route names this scenario.
    #[error("no route names scenario `{name}`; the scenarios are: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The scenarios there are, comma-separated (or `none`).
        known: String,
    },
    /// No route of the scenario names this state, so no route could ever match in it.
    #[error("no route of scenario `{name}` names state `{state}`; its states are: {known}")]
    UnknownState {
        /// The scenario.
        name: String,
        /// The state asked for.
        state: String,
        /// The states its routes name, comma-separated.
        known: String,
    },
}

impl Scenarios {
    /// The slot of a route's scenario, made on the first route that names it.
    pub(crate) fn route(&mut self, config: &ScenarioConfig) -> RouteScenario {
        let start = Arc::clone(&self.start);
        let scenario = self.map.entry(config.name.clone()).or_insert_with(|| Scenario {
            slot: Arc::new(Slot::new(&start)),
            states: BTreeSet::from([SCENARIO_START.to_owned()]),
        });
        scenario.states.extend(config.state.iter().chain(&config.next_state).cloned());
        RouteScenario {
            name: config.name.clone(),
            slot: Arc::clone(&scenario.slot),
            state: config.state.clone().map(Arc::new),
            next: config.next_state.clone().map(Arc::new),
        }
    }

    /// Takes over the slots of `previous`'s scenarios that this router also has, and points `route` at them: the
    /// state of a scenario whose routes still exist survives a reload.
    pub(crate) fn adopt<'a>(&mut self, previous: &Scenarios, routes: impl Iterator<Item = &'a mut RouteScenario>) {
        for (name, scenario) in &mut self.map {
            if let Some(old) = previous.map.get(name) {
                scenario.slot = Arc::clone(&old.slot);
            }
        }
        for route in routes {
            if let Some(scenario) = self.map.get(&route.name) {
                route.slot = Arc::clone(&scenario.slot);
            }
        }
    }

    /// The scenarios' names, in the order of [`Scenarios::refresh`].
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// Copies states read from a shared store into the slots (in the order of [`Scenarios::names`]; none: the
    /// start), so that matching and templates see them. A state that did not change is not stored again.
    pub(crate) fn refresh(&self, states: Vec<Option<String>>) {
        for (scenario, state) in self.map.values().zip(states) {
            let now = scenario.slot.get();
            let want = state.as_deref().unwrap_or(&self.start);
            if *now != want {
                let value = if want == *self.start { Arc::clone(&self.start) } else { Arc::new(want.to_owned()) };
                scenario.slot.0.store(value);
            }
        }
    }

    /// Whether no route names a scenario.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every scenario and its state, by name.
    pub fn list(&self) -> Vec<ScenarioState> {
        self.map
            .iter()
            .map(|(name, s)| ScenarioState {
                name: name.clone(),
                state: s.slot.get().to_string(),
                states: s.states.iter().cloned().collect(),
            })
            .collect()
    }

    /// Every scenario's name and state, for templates.
    pub(crate) fn states(&self) -> impl Iterator<Item = (&str, Arc<String>)> {
        self.map.iter().map(|(name, s)| (name.as_str(), s.slot.get()))
    }

    /// Puts scenario `name` in `state`, which one of its routes must name (or be the start).
    pub fn set(&self, name: &str, state: &str) -> Result<(), ScenarioError> {
        let Some(scenario) = self.map.get(name) else {
            let known = self.map.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>();
            let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
            return Err(ScenarioError::Unknown { name: name.to_owned(), known });
        };
        if !scenario.states.contains(state) {
            let known = scenario.states.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
            return Err(ScenarioError::UnknownState { name: name.to_owned(), state: state.to_owned(), known });
        }
        scenario.slot.0.store(Arc::new(state.to_owned()));
        Ok(())
    }

    /// Puts every scenario back in its start state.
    pub fn reset(&self) {
        for scenario in self.map.values() {
            scenario.slot.0.store(Arc::clone(&self.start));
        }
    }
}

"""Health that means the same on every vendor: checks, verdicts and the policy behind them.

    >>> from gpuabst.health import evaluate, HealthPolicy
    >>> node = evaluate(gpuabst.snapshot(), HealthPolicy(expected_devices=8))
    >>> node.level, node.summary
    (<Level.FAIL: 'fail'>, 'node: expected 8 GPUs, found 7: ...')

Checks read only the vendor-neutral model (:mod:`gpuabst.model`), never a vendor library; what each
one reads and what it maps to in DCGM's health watches is in docs/health.md.
"""

from __future__ import annotations

from gpuabst.health.checks import DEVICE_CHECKS
from gpuabst.health.evaluate import evaluate, evaluate_device
from gpuabst.health.policy import DEFAULT_POLICY, HealthPolicy, PolicyError, load_policy, policy_from_mapping
from gpuabst.health.verdict import Check, DeviceHealth, Level, NodeHealth, worst

__all__ = [
    "DEFAULT_POLICY", "DEVICE_CHECKS", "Check", "DeviceHealth", "HealthPolicy", "Level", "NodeHealth",
    "PolicyError", "evaluate", "evaluate_device", "load_policy", "policy_from_mapping", "worst",
]

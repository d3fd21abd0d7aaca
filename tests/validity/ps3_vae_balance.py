"""Validity catalogue for ps3/vae_balance: alternative correct answers and known mistakes."""

import torch
from validity_harness import Catalogue

catalogue = Catalogue(
    "ps3/vae_balance",
    tests={
        "RegularisedLoss": [
            "test_RegularisedLoss_total",
            "test_RegularisedLoss_gradients",
            "test_RegularisedLoss_logging",
        ],
        "kl_weight": ["test_kl_weight_values", "test_kl_weight_edges"],
        "my_balance": ["test_my_balance"],
    },
)

# --- correct alternatives ---------------------------------------------------------------------


@catalogue.correct
class RegularisedLoss:
    """torch.add with alpha and .item() for logging"""

    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        import torch

        loss, reg = self.loss_fn(output, target), self.reg_fn(output)
        self.last_loss, self.last_reg = loss.item(), reg.item()
        return torch.add(loss, reg, alpha=self.weight)


@catalogue.correct
class RegularisedLoss(torch.nn.Module):
    """an nn.Module whose forward does the work, logging with float(tensor.detach())"""

    def __init__(self, loss_fn, reg_fn, weight=1.0):
        super().__init__()
        self.loss_fn = loss_fn
        self.reg_fn = reg_fn
        self.weight = weight
        self.last_loss = None
        self.last_reg = None

    def forward(self, output, target):
        terms = {"loss": self.loss_fn(output, target), "reg": self.reg_fn(output)}
        self.last_loss = float(terms["loss"].detach())
        self.last_reg = float(terms["reg"].detach())
        return terms["loss"] + terms["reg"] * self.weight


@catalogue.correct
class RegularisedLoss:
    """terms computed regularisation first, summed as a list of weighted terms"""

    def __init__(self, loss_fn, reg_fn, weight=1.0):
        vars(self).update(loss_fn=loss_fn, reg_fn=reg_fn, weight=weight, last_loss=None, last_reg=None)

    def __call__(self, output, target):
        reg = self.reg_fn(output)
        loss = self.loss_fn(output, target)
        self.last_reg = reg.detach().item()
        self.last_loss = loss.detach().item()
        return sum([reg * self.weight], start=loss)


@catalogue.correct
class RegularisedLoss:
    """float() straight on the tensors, without detach (PyTorch warns; still a float)"""

    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn = loss_fn
        self.reg_fn = reg_fn
        self.weight = weight
        self.last_loss = None
        self.last_reg = None

    def __call__(self, output, target):
        loss = self.loss_fn(output, target)
        reg = self.reg_fn(output)
        self.last_loss = float(loss)
        self.last_reg = float(reg)
        return loss + self.weight * reg


@catalogue.correct
class RegularisedLoss:
    """the total as a matrix product: the stacked terms times the vector (1, weight)"""

    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        import torch

        terms = torch.stack([self.loss_fn(output, target), self.reg_fn(output)])
        self.last_loss, self.last_reg = (float(t) for t in terms.detach())
        return terms @ torch.tensor([1.0, self.weight], dtype=terms.dtype)


# --- mistakes ---------------------------------------------------------------------------------


@catalogue.wrong("test_RegularisedLoss_total", "weight on the loss instead of the regulariser")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        loss, reg = self.loss_fn(output, target), self.reg_fn(output)
        self.last_loss, self.last_reg = float(loss), float(reg)
        return self.weight * loss + reg


@catalogue.wrong("test_RegularisedLoss_total", "returns the unweighted sum")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        loss, reg = self.loss_fn(output, target), self.reg_fn(output)
        self.last_loss, self.last_reg = float(loss), float(reg)
        return loss + reg


@catalogue.wrong("test_RegularisedLoss_total", "weight 0 falls back to 1 (weight or 1.0)")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight or 1.0
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        loss, reg = self.loss_fn(output, target), self.reg_fn(output)
        self.last_loss, self.last_reg = float(loss), float(reg)
        return loss + self.weight * reg


@catalogue.wrong("test_RegularisedLoss_total", "weight frozen at construction")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self._scaled_reg = lambda output: weight * reg_fn(output)
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        loss = self.loss_fn(output, target)
        scaled = self._scaled_reg(output)
        self.last_loss = float(loss)
        self.last_reg = float(scaled) / self.weight if self.weight else 0.0
        return loss + scaled


@catalogue.wrong("test_RegularisedLoss_total", "arguments of loss_fn swapped")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        loss, reg = self.loss_fn(target, output), self.reg_fn(output)
        self.last_loss, self.last_reg = float(loss), float(reg)
        return loss + self.weight * reg


@catalogue.wrong("test_RegularisedLoss_total", "a convex combination (loss + w reg) / (1 + w)")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        loss, reg = self.loss_fn(output, target), self.reg_fn(output)
        self.last_loss, self.last_reg = float(loss), float(reg)
        return (loss + self.weight * reg) / (1 + self.weight)


@catalogue.wrong("test_RegularisedLoss_gradients", "returns a float (total.item())")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        import torch

        loss, reg = self.loss_fn(output, target), self.reg_fn(output)
        self.last_loss, self.last_reg = float(loss), float(reg)
        return torch.tensor((loss + self.weight * reg).item())


@catalogue.wrong("test_RegularisedLoss_gradients", "regularisation detached in the total")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        loss, reg = self.loss_fn(output, target), self.reg_fn(output).detach()
        self.last_loss, self.last_reg = float(loss), float(reg)
        return loss + self.weight * reg


@catalogue.wrong("test_RegularisedLoss_gradients", "returns the total built from the logged floats")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        import torch

        self.last_loss = float(self.loss_fn(output, target))
        self.last_reg = float(self.reg_fn(output))
        return torch.as_tensor(self.last_loss + self.weight * self.last_reg)


@catalogue.wrong("test_RegularisedLoss_logging", "logs tensors that keep the graph")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        self.last_loss = self.loss_fn(output, target)
        self.last_reg = self.reg_fn(output)
        return self.last_loss + self.weight * self.last_reg


@catalogue.wrong("test_RegularisedLoss_logging", "logs detached tensors, not floats")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        loss, reg = self.loss_fn(output, target), self.reg_fn(output)
        self.last_loss, self.last_reg = loss.detach(), reg.detach()
        return loss + self.weight * reg


@catalogue.wrong("test_RegularisedLoss_logging", "logs before computing: values of the previous call")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = 0.0
        self._pending = (0.0, 0.0)

    def __call__(self, output, target):
        self.last_loss, self.last_reg = self._pending
        loss, reg = self.loss_fn(output, target), self.reg_fn(output)
        self._pending = (float(loss), float(reg))
        return loss + self.weight * reg


@catalogue.wrong("test_RegularisedLoss_logging", "logs the weighted regularisation")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        loss, reg = self.loss_fn(output, target), self.weight * self.reg_fn(output)
        self.last_loss, self.last_reg = float(loss), float(reg)
        return loss + reg


@catalogue.wrong("test_RegularisedLoss_logging", "calls reg_fn again to log it")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        total = self.loss_fn(output, target) + self.weight * self.reg_fn(output)
        self.last_loss = float(self.loss_fn(output, target))
        self.last_reg = float(self.reg_fn(output))
        return total


@catalogue.wrong("test_RegularisedLoss_logging", "logs the total as last_loss")
class RegularisedLoss:
    def __init__(self, loss_fn, reg_fn, weight=1.0):
        self.loss_fn, self.reg_fn, self.weight = loss_fn, reg_fn, weight
        self.last_loss = self.last_reg = None

    def __call__(self, output, target):
        reg = self.reg_fn(output)
        total = self.loss_fn(output, target) + self.weight * reg
        self.last_loss, self.last_reg = float(total), float(reg)
        return total


# --- kl_weight --------------------------------------------------------------------------------


@catalogue.correct
def kl_weight(step, warmup_steps, beta=1.0):
    """the fraction of the warm-up done, clamped at 1"""
    if warmup_steps == 0:
        return float(beta)
    done = min(1.0, step / warmup_steps)
    return done * beta


@catalogue.correct
def kl_weight(step, warmup_steps, beta=1.0):
    """np.interp between (0, 0) and (warmup_steps, beta), made a float"""
    import numpy as np

    if warmup_steps <= 0:
        return float(beta)
    return float(np.interp(step, [0, warmup_steps], [0.0, beta]))


@catalogue.correct
def kl_weight(step, warmup_steps, beta=1.0):
    """torch.clamp in float64, then float()"""
    import torch

    progress = torch.tensor(step / warmup_steps if warmup_steps else 1.0, dtype=torch.float64)
    return float(torch.clamp(progress, max=1.0) * beta)


@catalogue.correct
def kl_weight(step, warmup_steps, beta=1.0):
    """exact rational arithmetic with fractions.Fraction, made a float at the end"""
    from fractions import Fraction

    if warmup_steps == 0:
        return float(beta)
    return float(Fraction(beta) * min(Fraction(step, warmup_steps), Fraction(1)))


@catalogue.wrong("test_kl_weight_values", "reaches beta one step late: divides by warmup_steps + 1")
def kl_weight(step, warmup_steps, beta=1.0):
    return float(beta) * min(1.0, step / (warmup_steps + 1))


@catalogue.wrong("test_kl_weight_values", "integer division: 0 until the end of the warm-up, then beta")
def kl_weight(step, warmup_steps, beta=1.0):
    if warmup_steps == 0:
        return float(beta)
    return float(beta) * min(1, step // warmup_steps)


@catalogue.wrong("test_kl_weight_values", "counts steps from 1: starts at beta / warmup_steps, not 0")
def kl_weight(step, warmup_steps, beta=1.0):
    if warmup_steps == 0:
        return float(beta)
    return float(beta) * min(1.0, (step + 1) / warmup_steps)


@catalogue.wrong("test_kl_weight_values", "never reaches beta: stops at (warmup_steps - 1) / warmup_steps")
def kl_weight(step, warmup_steps, beta=1.0):
    if warmup_steps == 0:
        return float(beta)
    return float(beta) * min(step, warmup_steps - 1) / warmup_steps


@catalogue.wrong("test_kl_weight_values", "starts at beta and decays to 0 (annealed the wrong way)")
def kl_weight(step, warmup_steps, beta=1.0):
    if warmup_steps == 0:
        return float(beta)
    return float(beta) * max(0.0, 1.0 - step / warmup_steps)


@catalogue.wrong("test_kl_weight_values", "not clamped: keeps growing after the warm-up")
def kl_weight(step, warmup_steps, beta=1.0):
    if warmup_steps == 0:
        return float(beta)
    return float(beta) * step / warmup_steps


@catalogue.wrong("test_kl_weight_values", "an exponential approach that never quite reaches beta")
def kl_weight(step, warmup_steps, beta=1.0):
    import math

    if warmup_steps == 0:
        return float(beta)
    return float(beta) * (1.0 - math.exp(-5.0 * step / warmup_steps))


@catalogue.wrong("test_kl_weight_edges", "divides by zero when there is no warm-up")
def kl_weight(step, warmup_steps, beta=1.0):
    return float(beta) * min(1.0, step / warmup_steps)


@catalogue.wrong("test_kl_weight_edges", "no warm-up treated as a warm-up of one step (max(warmup_steps, 1))")
def kl_weight(step, warmup_steps, beta=1.0):
    return float(beta) * min(1.0, step / max(warmup_steps, 1))


@catalogue.wrong("test_kl_weight_edges", "returns beta itself after the warm-up: an int when beta is one")
def kl_weight(step, warmup_steps, beta=1.0):
    if step >= warmup_steps:
        return beta
    return beta * step / warmup_steps


@catalogue.wrong("test_kl_weight_edges", "returns a 0-dim tensor")
def kl_weight(step, warmup_steps, beta=1.0):
    import torch

    if warmup_steps == 0:
        return torch.tensor(float(beta))
    return torch.tensor(float(beta)) * min(1.0, step / warmup_steps)


# --- my_balance -------------------------------------------------------------------------------


@catalogue.correct
def my_balance():
    """samples: beta 4 with a warm-up of half the run"""
    beta, warmup_steps = 4.0, 500
    return beta, warmup_steps


@catalogue.correct
def my_balance():
    """the ELBO without warm-up, beta as an int"""
    return (1, 0)


@catalogue.correct
def my_balance():
    """a list, a small beta for reconstructions and the longest warm-up allowed"""
    return [0.5, 999]


@catalogue.correct
def my_balance():
    """the warm-up worked out from the length of the run"""
    run_steps = 1000
    return 2.0, run_steps // 4


@catalogue.wrong("test_my_balance", "a warm-up as long as the run: the weight never reaches beta")
def my_balance():
    return 4.0, 1000


@catalogue.wrong("test_my_balance", "the warm-up as a fraction of the run")
def my_balance():
    return 4.0, 0.5


@catalogue.wrong("test_my_balance", "beta 0: no KL term at all")
def my_balance():
    return 0.0, 0


@catalogue.wrong("test_my_balance", "a dict instead of the tuple")
def my_balance():
    return {"beta": 4.0, "warmup_steps": 500}

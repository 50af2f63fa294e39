"""Random thin-plate-spline (TPS) / affine deformations for the equivariance constraints (FOMM Sec. 3.3, Eqs. 10-13).

A :class:`RandomTPS` is the known deformation T_{X<-Y} of the paper: it maps coordinates of the deformed image Y to
coordinates of the original image X, in the normalised [-1, 1] frame of
:func:`~motiontransfer.ops.grid.make_coordinate_grid` (x first). ``transform_frame`` builds Y from X by backward
warping, ``warp_coordinates`` maps keypoints of Y into X (Eq. 11) and ``jacobian`` gives dT/dp by autograd (Eq. 12).

The parameterisation follows the official FOMM sampler (supplementary B.2): an affine part ``theta`` drawn around the
identity with standard deviation ``sigma_affine`` per entry, plus a radial-basis part on a ``points_tps x points_tps``
grid of control points c_p with weights w_p of standard deviation ``sigma_tps``:

    T(z) = A z + t + sum_p w_p U(r_p(z)),    U(r) = r^2 log(r + 1e-6).

Two details differ from a textbook TPS and are kept because the official training used them: the radius is the
L1 distance ``r_p(z) = |z_x - c_px| + |z_y - c_py|``, and one weight per control point displaces x and y by the same
amount.
"""

from __future__ import annotations

from typing import Protocol

import torch

from motiontransfer.ops.grid import make_coordinate_grid
from motiontransfer.ops.warp import warp

_LOG_EPS = 1e-6


class CoordinateTransform(Protocol):
    """What the equivariance losses need from a known deformation T_{X<-Y}."""

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) points of Y -> (B, N, 2) points of X."""
        ...

    def jacobian(self, coordinates: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) points of Y -> (B, N, 2, 2) Jacobians dT/dp at those points."""
        ...


class RandomTPS:
    """A batch of affine + TPS deformations (see the module docstring for the formula).

    Args:
        theta: (B, 2, 3) affine matrices [A | t]; the identity is ``torch.eye(2, 3)``.
        control_points: (P, 2) TPS control points, or None for a purely affine transform.
        control_params: (B, P) TPS weights (one per control point, shared by x and y); required with
            ``control_points``.

    Use :meth:`sample` to draw random transforms as FOMM does. The parameters are kept in the dtype and device they
    were made with and cast to those of the coordinates or frames they are applied to.
    """

    def __init__(
        self,
        theta: torch.Tensor,
        control_points: torch.Tensor | None = None,
        control_params: torch.Tensor | None = None,
    ) -> None:
        if theta.dim() != 3 or tuple(theta.shape[1:]) != (2, 3):
            raise ValueError(f"theta must be (B, 2, 3), got {tuple(theta.shape)}")
        if (control_points is None) != (control_params is None):
            raise ValueError("control_points and control_params must be given together")
        if control_points is not None and control_params is not None:
            num_points = control_points.shape[0]
            if tuple(control_points.shape) != (num_points, 2):
                raise ValueError(f"control_points must be (P, 2), got {tuple(control_points.shape)}")
            if tuple(control_params.shape) != (theta.shape[0], num_points):
                raise ValueError(f"control_params must be (B, P) = ({theta.shape[0]}, {num_points}), "
                                 f"got {tuple(control_params.shape)}")
        self.theta = theta
        self.control_points = control_points
        self.control_params = control_params

    @property
    def batch_size(self) -> int:
        """Number B of transforms in the batch."""
        return self.theta.shape[0]

    @classmethod
    def sample(
        cls,
        batch: int,
        sigma_affine: float,
        sigma_tps: float | None = None,
        points_tps: int | None = None,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> RandomTPS:
        """Draw ``batch`` random transforms (FOMM's ``transform_params``: sigma_affine 0.05, sigma_tps 0.005,
        points_tps 5).

        Args:
            batch: B.
            sigma_affine: standard deviation of the noise added to every entry of the identity ``eye(2, 3)``.
            sigma_tps: standard deviation of the TPS weights; None (with ``points_tps`` None) for affine only.
            points_tps: the control points form a ``points_tps x points_tps`` grid spanning [-1, 1]^2.
            generator: optional random generator (on ``device``) for reproducible draws.
            device: device of the parameters (default: torch's default device).
            dtype: floating dtype of the parameters (default: torch's default dtype).

        Returns:
            A :class:`RandomTPS`; the identity when both sigmas are 0.
        """
        if (sigma_tps is None) != (points_tps is None):
            raise ValueError("sigma_tps and points_tps must be given together (or both left None)")
        dtype = dtype if dtype is not None else torch.get_default_dtype()
        identity = torch.eye(2, 3, device=device, dtype=dtype)
        noise = torch.randn(batch, 2, 3, generator=generator, device=device, dtype=dtype)
        theta = identity + sigma_affine * noise
        if sigma_tps is None or points_tps is None:
            return cls(theta)
        control_points = make_coordinate_grid(points_tps, points_tps, device=device, dtype=dtype).reshape(-1, 2)
        weights = torch.randn(batch, points_tps**2, generator=generator, device=device, dtype=dtype)
        return cls(theta, control_points, sigma_tps * weights)

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Apply T to points: (B, N, 2) (or (1, N, 2), broadcast over the batch) -> (B, N, 2), x first.

        The affine part is ``A z + t``; the TPS part adds ``sum_p w_p U(r_p(z))`` to both coordinates.
        """
        theta = self.theta.to(coordinates)
        linear, shift = theta[:, None, :, :2], theta[:, None, :, 2]
        transformed = (linear @ coordinates.unsqueeze(-1)).squeeze(-1) + shift
        if self.control_points is None or self.control_params is None:
            return transformed
        control_points = self.control_points.to(coordinates)
        control_params = self.control_params.to(coordinates)
        radius = (coordinates.unsqueeze(-2) - control_points).abs().sum(-1)  # (B, N, P), L1 as the official code
        basis = radius**2 * torch.log(radius + _LOG_EPS)
        displacement = (basis * control_params.unsqueeze(1)).sum(-1, keepdim=True)  # (B, N, 1)
        return transformed + displacement

    def jacobian(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Jacobian dT/dp at every point, by autograd with ``create_graph=True`` (so a loss built on it can be
        back-propagated into the points, e.g. into a keypoint detector).

        Args:
            coordinates: (B, N, 2) or (1, N, 2) points; they need not require grad.

        Returns:
            (B, N, 2, 2) with ``J[b, n, i, j] = d T_i / d p_j`` at ``coordinates[b, n]`` (rows: output x, y).
        """
        points = coordinates.expand(self.batch_size, -1, -1)
        with torch.enable_grad():
            if not points.requires_grad:
                points = points.detach().requires_grad_(True)
            warped = self.warp_coordinates(points)
            # T acts point by point, so the gradient of the summed i-th output is the i-th row of each Jacobian.
            rows = [torch.autograd.grad(warped[..., i].sum(), points, create_graph=True)[0] for i in range(2)]
        return torch.stack(rows, dim=-2)

    def transform_frame(self, frame: torch.Tensor, align_corners: bool) -> torch.Tensor:
        """Deform images: ``Y(z) = X(T(z))`` by backward warping with reflection padding (as FOMM).

        Args:
            frame: (B, C, H, W) images X.
            align_corners: grid_sample convention, passed to :func:`motiontransfer.ops.warp.warp`.

        Returns:
            (B, C, H, W) deformed images Y; equal to ``frame`` for the identity transform (exactly with
            ``align_corners=True``).
        """
        batch, _, height, width = frame.shape
        if batch != self.batch_size:
            raise ValueError(f"frame batch {batch} does not match the transform batch {self.batch_size}")
        grid = make_coordinate_grid(height, width, device=frame.device, dtype=frame.dtype).reshape(1, -1, 2)
        grid = self.warp_coordinates(grid).reshape(batch, height, width, 2)
        return warp(frame, grid, align_corners=align_corners, padding_mode="reflection")

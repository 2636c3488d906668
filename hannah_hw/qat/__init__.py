"""Training: data sets, and (quantisation-aware) trainers."""

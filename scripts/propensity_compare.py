"""Side by side on one seeded split: scikit-learn's LogisticRegression and xgboost, fitted here
on train.csv, against our two propensity models' scores of test.csv (written by `ringwise
score`). Every model is judged by the same code: ROC AUC (scikit-learn), top-decile lift and
precision (the 10% highest scores, ties by row order, as qa::propensity::Metrics), Brier score.

Usage: propensity_compare.py SPLIT_DIR OURS_NAME=SCORES.csv ...
"""
import csv
import math
import sys

import numpy as np
import sklearn
import xgboost
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    ids = [r[0] for r in body]
    x = np.array([[float(v) if v != "" else np.nan for v in r[1:-1]] for r in body])
    y = np.array([int(r[-1]) for r in body])
    return header, ids, x, y


def lift(p, y):
    order = sorted(range(len(p)), key=lambda i: (-p[i], i))
    top = max(1, math.ceil(len(p) * 0.1))
    precision = sum(y[i] for i in order[:top]) / top
    return precision / y.mean(), precision


def main():
    split = sys.argv[1]
    _, _, x_train, y_train = read(f"{split}/train.csv")
    _, test_ids, x_test, y_test = read(f"{split}/test.csv")
    results = []

    def judge(name, p):
        p = np.asarray(p, dtype=float)
        l, prec = lift(p, y_test)
        results.append((name, roc_auc_score(y_test, p), l, prec, brier_score_loss(y_test, p)))

    for name, c in [("sklearn-logistic (C=1, default)", 1.0), ("sklearn-logistic (C=0.1)", 0.1)]:
        m = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        m.fit(x_train, y_train)
        judge(name, m.predict_proba(x_test)[:, 1])
    xgb_default = XGBClassifier(random_state=0, n_jobs=2)
    xgb_default.fit(x_train, y_train)
    judge("xgboost (defaults)", xgb_default.predict_proba(x_test)[:, 1])
    xgb_small = XGBClassifier(
        n_estimators=300, max_depth=3, learning_rate=0.05, subsample=0.8,
        colsample_bytree=0.8, random_state=0, n_jobs=2)
    xgb_small.fit(x_train, y_train)
    judge("xgboost (depth 3, eta 0.05, 300 trees)", xgb_small.predict_proba(x_test)[:, 1])
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        with open(path, newline="") as f:
            scores = {r[0]: float(r[1]) for r in list(csv.reader(f))[1:]}
        judge(name, [scores[i] for i in test_ids])

    print(f"same split: {len(y_train)} training rows ({y_train.sum()} buyers), "
          f"{len(y_test)} held out ({y_test.sum()} buyers); scikit-learn {sklearn.__version__}, "
          f"xgboost {xgboost.__version__}")
    print(f"{'model':<42} {'AUC':>6} {'lift@10':>8} {'prec@10':>8} {'Brier':>7}")
    for name, auc, l, prec, brier in results:
        print(f"{name:<42} {auc:>6.4f} {l:>8.2f} {prec:>8.3f} {brier:>7.4f}")
    by_name = {r[0]: r for r in results}
    print(f"propensity.auc_xgboost_same_split={by_name['xgboost (defaults)'][1]:.4f}")
    print(f"propensity.lift_top10_xgboost_same_split={by_name['xgboost (defaults)'][2]:.2f}")


if __name__ == "__main__":
    main()

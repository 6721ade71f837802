"""Autograd in eight steps, then a real model: a small network that reads handwritten digits.

    python examples/autograd_tutorial.py

shardgrad copies PyTorch's API, so this file imports it under PyTorch's name: apart from
loading the dataset, every line is also valid PyTorch.
The steps are the ones every PyTorch tutorial walks through:

    1. import                       5. compute a loss
    2. tensors that track gradients 6. backward, and look at .grad
    3. a model, two ways            7. an optimizer step
    4. the forward pass             8. a training loop over epochs

plus two things autograd can do beyond the basics (running backward twice through one graph,
and differentiating a derivative), and finally training on the digits dataset shipped with
shardgrad, printing the test accuracy.
"""

from __future__ import annotations

import os
import tempfile
import time

# Step 1: import. `import shardgrad as torch` lets PyTorch code run on shardgrad unchanged.
import shardgrad as torch
from shardgrad import nn, optim
from shardgrad.data import load_digits

SEED = 0  # one seed makes every number this script prints the same on every run


def step2_tensors_that_track_gradients() -> None:
    """A tensor with requires_grad=True records every operation done with it."""
    print("== Step 2: tensors that track gradients")
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x**2).sum()  # y = x1^2 + x2^2 + x3^2
    print("y =", y.item(), "made by", type(y.grad_fn).__name__)  # y remembers how it was made
    y.backward()  # walk back through that record: dy/dx = 2x lands in x.grad
    print("dy/dx =", x.grad.tolist())


def retain_graph_demo() -> None:
    """backward() frees the graph it walked, to save memory. retain_graph=True keeps it, so
    a second backward through the same graph works; gradients then add up in .grad."""
    print("== Beyond the basics: two backward passes through one graph")
    w = torch.tensor([1.0, -1.0], requires_grad=True)
    loss = (w * w * 3).sum()  # d(loss)/dw = 6w
    loss.backward(retain_graph=True)
    print("after one backward: ", w.grad.tolist())
    loss.backward()  # still possible: the first call kept the graph
    print("after two backwards:", w.grad.tolist(), "(gradients accumulate)")
    try:
        loss.backward()  # the second call did not keep it
    except RuntimeError:
        print("a third backward raises RuntimeError: the graph was freed")


def second_derivative_demo() -> None:
    """autograd.grad returns gradients instead of storing them in .grad. With
    create_graph=True the gradient is itself part of a graph, so it can be differentiated."""
    print("== Beyond the basics: a second derivative")
    x = torch.tensor(2.0, requires_grad=True)
    f = x**3
    (df,) = torch.autograd.grad(f, x, create_graph=True)  # 3x^2 = 12 at x = 2
    (d2f,) = torch.autograd.grad(df, x)  # 6x = 12 at x = 2
    print(f"f(2) = {f.item()}, f'(2) = {df.item()}, f''(2) = {d2f.item()}")


# Step 3: a model, two ways. nn.Sequential chains layers in order; a subclass of nn.Module
# says the same in code, and can do anything in forward (branches, loops, several inputs).
def sequential_model(n_hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, n_hidden), nn.ReLU(), nn.Linear(n_hidden, 10))


class MLP(nn.Module):
    """Two linear layers with a ReLU between: 64 pixels in, 10 class scores (logits) out."""

    def __init__(self, n_hidden: int) -> None:
        super().__init__()  # always first: it sets up parameter registration
        self.hidden = nn.Linear(64, n_hidden)  # assigning a layer registers its parameters
        self.act = nn.ReLU()
        self.out = nn.Linear(n_hidden, 10)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


def compare_the_two_models() -> None:
    print("== Step 3: a model, two ways")
    torch.manual_seed(SEED)
    seq = sequential_model(32)
    torch.manual_seed(SEED)  # same seed, same layers in the same order: same initial weights
    mlp = MLP(32)
    print("Sequential parameters:", [name for name, _ in seq.named_parameters()])
    print("MLP parameters:       ", [name for name, _ in mlp.named_parameters()])
    x = torch.randn(4, 64)
    print("same outputs:", bool((seq(x) - mlp(x)).abs().max().item() == 0.0))


def standardize(train, test):
    """Shift and scale every pixel by its training-set mean and spread, which makes
    optimisation easier. Border pixels are almost always 0 (spread near 0): the 0.1 keeps
    the division tame. Only the training set is looked at, as with any real held-out data."""
    mean = train.mean(dim=0)
    std = ((train - mean) ** 2).mean(dim=0).sqrt() + 0.1
    return (train - mean) / std, (test - mean) / std


def accuracy(model: nn.Module, X, y) -> float:
    model.eval()  # layers such as Dropout behave differently in evaluation
    with torch.no_grad():  # no graph is needed to evaluate: faster, less memory
        predicted = model(X).argmax(dim=1)  # the class with the largest score
    model.train()
    return (predicted == y).float().mean().item()


def train_on_digits(epochs: int = 30, batch_size: int = 64, n_hidden: int = 256) -> float:
    print("== Steps 4-8 on real data: handwritten digits")
    X_train, y_train = load_digits("train", seed=SEED)  # numpy arrays: [1438, 64], [1438]
    X_test, y_test = load_digits("test", seed=SEED)  # [359, 64], [359]
    X_train, X_test = standardize(torch.tensor(X_train), torch.tensor(X_test))
    y_train, y_test = torch.tensor(y_train), torch.tensor(y_test)

    torch.manual_seed(SEED)
    model = MLP(n_hidden)
    loss_fn = nn.CrossEntropyLoss()  # softmax + negative log-likelihood, on raw logits
    optimizer = optim.Adam(model.parameters(), lr=3e-3)

    # Steps 4-7 once, slowly, on the first 8 images.
    logits = model(X_train[:8])  # Step 4: forward pass, [8, 10] scores
    loss = loss_fn(logits, y_train[:8])  # Step 5: one number saying how wrong they are
    print(f"first loss: {loss.item():.4f} (about ln(10) = 2.30 for random guessing)")
    optimizer.zero_grad()  # .grad accumulates (see above), so clear it before each backward
    loss.backward()  # Step 6: d(loss)/d(every parameter), into each parameter's .grad
    grad = model.hidden.weight.grad
    print("hidden.weight", tuple(model.hidden.weight.shape), "has .grad", tuple(grad.shape))
    optimizer.step()  # Step 7: move every parameter a little against its gradient
    print(f"same batch after one step: {loss_fn(model(X_train[:8]), y_train[:8]).item():.4f}")

    # Step 8: the loop. Each epoch visits every training image once, in a fresh order, in
    # mini-batches; each batch repeats steps 4-7.
    start = time.perf_counter()
    n = len(y_train)
    for epoch in range(epochs):
        order = torch.randperm(n)
        total = 0.0
        for i in range(0, n, batch_size):
            batch = order[i : i + batch_size]
            loss = loss_fn(model(X_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        if epoch % 10 == 0 or epoch == epochs - 1:
            print(f"epoch {epoch:2d}  train loss {total / n:.4f}")
    print(f"trained in {time.perf_counter() - start:.1f} s")

    # Saving and loading: state_dict() names every parameter. shardgrad.save always writes
    # safetensors, which Hugging Face tools and PyTorch read and which is never a pickle; the
    # ".pt" name keeps this line valid PyTorch too, whose torch.save writes its own format.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits_mlp.pt")
        torch.save(model.state_dict(), path)
        restored = MLP(n_hidden)
        restored.load_state_dict(torch.load(path))
    acc = accuracy(restored, X_test, y_test)
    print(f"test accuracy: {acc:.4f}")
    return acc


def main() -> None:
    step2_tensors_that_track_gradients()
    retain_graph_demo()
    second_derivative_demo()
    compare_the_two_models()
    train_on_digits()


if __name__ == "__main__":
    main()

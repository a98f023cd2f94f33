"""Earlier lessons' answers, given to later lessons as read-only cells (one source for all).

Lessons 4 to 6 start from the data pipeline (lesson 1) and the network (lessons 2 and 3);
``solutions/_src/NN_x.py`` puts these into ``given`` cells. This module never ships to
students on its own: only the lessons that come after these answers contain them.
"""

# lesson 1: uint8 images (N, 28, 28) -> x (N, 1, 28, 28) float32 in [0, 1], y (N,) int64, mini-batches
PIPELINE = r'''
def add_channel(images):
    return images[:, np.newaxis, :, :]


def normalize(images):
    return images.astype(np.float32) / 255


def to_tensors(images, labels):
    x = torch.from_numpy(normalize(add_channel(images)))
    y = torch.from_numpy(labels).long()
    return x, y


def make_loader(x, y, batch_size=4, shuffle=True):
    dataset = TensorDataset(x, y)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)
'''

# lessons 2 and 3: the course CNN, the same layers and names as mnist_cnn.model.Net
NET = r'''
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (N, 1, 28, 28) -> (N, 6, 12, 12)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # -> (N, 16, 4, 4)
        x = torch.flatten(x, 1)                     # -> (N, 256)
        x = F.relu(self.fc1(x))                     # -> (N, 120)
        x = F.relu(self.fc2(x))                     # -> (N, 84)
        return self.fc3(x)                          # -> (N, 10) logits
'''

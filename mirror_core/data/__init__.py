"""Data sets: import (files, Hugging Face, built-in offline sources), export, and read helpers for pages."""

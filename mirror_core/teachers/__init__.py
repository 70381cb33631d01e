"""Teachers: one interface (`base.Teacher`) and one module per provider; `registry.make_teacher(spec)`."""

from mirror_core.teachers.base import Completion, GenParams, Teacher, TeacherRequest

__all__ = ["Completion", "GenParams", "Teacher", "TeacherRequest"]

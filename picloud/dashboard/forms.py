"""WTForms for every dashboard form (validation and CSRF)."""
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from picloud.auth import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, ROLES, USERNAME_RE


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=255)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired(), Length(max=100)])


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField(
        "New password",
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)],
    )
    confirm = PasswordField("Repeat new password", validators=[EqualTo("password", "Passwords differ.")])


class UserForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[DataRequired(), Regexp(USERNAME_RE, message="Letters, digits or . _ @ - (max 64).")],
    )
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)]
    )
    role = SelectField("Role", choices=[(r, r) for r in ROLES], default="developer")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[(r, r) for r in ROLES])


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token, for buttons that change state."""
